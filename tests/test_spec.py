"""The option-string grammar (rankwise.spec) and the one registry (rankwise.registry)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from rankwise.errors import ConfigError
from rankwise.registry import Registry
from rankwise.spec import Term, convert, parse_sum, parse_term


def test_a_term_has_a_name_a_variant_parameters_and_a_weight():
    assert parse_term("0.1*TCM:margin_plus=0.8") == Term("tcm", {"margin_plus": "0.8"}, None, 0.1)
    assert parse_term("lambdaloss:ndcg2pp, mu=5") == Term("lambdaloss", {"mu": "5"}, "ndcg2pp", 1.0)
    assert parse_term("my_pkg.parts.MyBatches:size=3").name == "my_pkg.parts.MyBatches"  # importable: case kept


@pytest.mark.parametrize(
    ("text", "message"),
    [(":k=1", "no name given"), ("x:k=1,k=2", "given twice"), ("x:k=1,oops", "expected key=value")],
)
def test_bad_terms_name_what_is_wrong(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_term(text, "--negatives")


def test_a_sum_splits_on_plus_but_not_inside_a_number():
    terms = parse_sum("infonce:temperature=1e+3+0.5*tcm")
    assert [(t.name, t.weight) for t in terms] == [("infonce", 1.0), ("tcm", 0.5)]
    assert terms[0].params == {"temperature": "1e+3"}


def test_convert_reads_the_declared_type_and_names_the_key():
    assert convert("o", "k", "3", "int") == 3 and convert("o", "k", "true", bool) is True
    assert convert("o", "w", "1-30", "tuple[int, int]") == (1, 30)
    with pytest.raises(ConfigError, match="'k'"):
        convert("o", "k", "three", int)


class Part:
    pass


@dataclass
class Fixed(Part):
    size: int = 2


@dataclass
class UsersOwn(Part):
    size: int = 1


def test_the_registry_builds_round_trips_and_imports_a_users_class():
    parts: Registry = Registry("part", Part)
    parts.register("fixed")(Fixed)
    assert parts.create("fixed:size=5") == Fixed(5) and parts.spec_of(Fixed(5)) == "fixed:size=5"
    assert "fixed" in parts and parts.get("fixed") is Fixed and parts.names() == ["fixed"]
    own = UsersOwn(3)
    assert parts.resolve(own) is own  # an object passes through
    name = parts.spec_of(UsersOwn())
    assert name == f"{__name__}.UsersOwn"
    assert parts.resolve(name) == UsersOwn()  # config.toml's importable name builds it again
    assert parts.resolve(f"{name}:size=4") == UsersOwn(4)
    assert parts.resolve(parts.spec_of(UsersOwn(4))) == UsersOwn(4)  # its parameters too
    with pytest.raises(ConfigError, match="unknown part 'nope'; available: fixed"):
        parts.create("nope")
    with pytest.raises(ConfigError, match="is not a Part"):
        parts.create("tests.test_spec.Registry")
    with pytest.raises(ConfigError, match="cannot import"):
        parts.create("no_such_module.Thing")
