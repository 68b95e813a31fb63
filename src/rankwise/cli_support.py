"""Shared by the command modules: tables, the training flags generated from
:class:`~rankwise.training.config.TrainConfig`, dataset names, torchrun, library errors in flag terms."""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from rankwise.progress import console

DEFAULT_DATASET = "stdlib-code"


def _table(title: str, columns: dict[str, dict[str, float]]) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    for name in columns:
        table.add_column(name, justify="right")
    for metric in next(iter(columns.values())):
        table.add_row(metric, *(f"{columns[c][metric]:.4f}" for c in columns))
    return table


def _scalar(annotation: Any) -> type:
    """The flag's type: bool, int, float, or str (option strings, tuples such as ``1-30``)."""
    import re
    import typing

    if isinstance(annotation, str):  # a dataclass's annotation under ``from __future__ import annotations``
        words = set(re.findall(r"[A-Za-z_]+", annotation))
        return str if "tuple" in words else next((t for t in (bool, int, float) if t.__name__ in words), str)
    if annotation in (bool, int, float, str):
        return annotation
    if typing.get_origin(annotation) is typing.Annotated:
        return str
    return next((t for t in typing.get_args(annotation) if t in (bool, int, float, str)), str)


def _option(name: str, annotation: Any, description: str, shown: Any) -> inspect.Parameter:
    """A keyword ``--flag`` defaulting to None (unset: the library's default or the TOML's value)."""
    help_text = description + (f"  [default: {shown}]" if shown not in (None, "") else "")
    flag = "--" + name.replace("_", "-")
    base = _scalar(annotation)
    if base is bool:
        option = typer.Option(None, f"{flag}/--no-{flag[2:]}", help=help_text, show_default=False)
    else:
        option = typer.Option(None, flag, help=help_text, show_default=False)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=Optional[base])


def _config_options(defaults: dict[str, Any] | None = None, skip: set[str] = frozenset()) -> list[inspect.Parameter]:
    """One ``--flag`` per :class:`TrainConfig` field (but ``skip``), with its description and default
    (``defaults`` override the config's), so the command and the config cannot drift."""
    from rankwise.training.config import TrainConfig

    values = TrainConfig(**(defaults or {})).model_dump()  # option strings, as config.toml shows them
    return [
        _option(name, info.annotation, info.description or name, _shown(values[name]))
        for name, info in TrainConfig.model_fields.items()
        if name not in skip
    ]


def _dataclass_options(cls: type, skip: set[str] = frozenset()) -> list[inspect.Parameter]:
    """One ``--flag`` per field of an options dataclass, its help from the field's metadata."""
    from dataclasses import MISSING, fields

    return [
        _option(f.name, f.type, f.metadata.get("help", f.name), _shown(None if f.default is MISSING else f.default))
        for f in fields(cls)
        if f.name not in skip and f.init
    ]


def _shown(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value).lower()
    return "-".join(map(str, value)) if isinstance(value, tuple) else value


def _torchrun(nproc: int) -> None:
    """Run this very command again under ``torchrun --nproc-per-node N`` (without ``--nproc``) and exit with its status."""
    import os
    import subprocess

    args, skip = [], False
    for a in sys.argv[1:]:
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        args.append(a)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "rankwise.cli",
        *args,
    ]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc))),
    }
    raise typer.Exit(subprocess.call(cmd, env=env))


def _data_folder(data: str | Path) -> Path:
    """A BEIR folder, or the built-in stdlib-code (built and cached on first use)."""
    if str(data) == DEFAULT_DATASET:
        from rankwise.data.stdlib_code import ensure_built

        return ensure_built()
    return Path(data)


def _with_config_options(
    fn: Callable, defaults: dict[str, Any] | None = None, skip: set[str] = frozenset()
) -> Callable:
    return _with_options(fn, _config_options(defaults, skip))


def _with_options(fn: Callable, generated: list[inspect.Parameter]) -> Callable:
    """``fn``'s own parameters, then the generated flags in place of its ``**options``."""
    sig = inspect.signature(fn, eval_str=True)
    fixed = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    params = fixed + generated
    fn.__signature__ = sig.replace(parameters=params)
    fn.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
    return fn


def _plain(text: str) -> None:
    """A library's log line, printed as written (no rich markup read into it)."""
    console.print(text, markup=False, highlight=False)


# library arguments whose command-line flag has another name
_FLAG_FOR = {"corpus": "data", "out_dir": "out"}


def cli_message(message: str, app: typer.Typer) -> str:
    """A library error in command-line terms: ``allow_missing=True`` -> ``--allow-missing``,
    ``qrels=FILE`` -> ``--qrels FILE``, ``corpus=`` -> ``--data``."""
    import typer.main

    commands = list(typer.main.get_command(app).commands.values())
    commands += list(getattr(next((c for c in commands if c.name == "data"), None), "commands", {}).values())
    flags = {p.name for cmd in commands for p in getattr(cmd, "params", [])}

    def flag(name: str) -> str | None:
        name = _FLAG_FOR.get(name, name)
        return "--" + name.replace("_", "-") if name in flags else None

    def swap(m: re.Match) -> str:
        name, value = m.group(1), m.group(2)
        f = flag(name)
        if f is None:
            return m.group(0)
        return f if value in ("True", "") else f"{f} {value}"

    return re.sub(r"\b([a-z_]+)=(True|[A-Z][A-Z_]*|)(?=[\s),;]|$)", swap, message)


def said_as_flag(exc: Exception, app: typer.Typer) -> str:
    """An error in command-line terms: its parameter (``k=0: ...``) as the flag (``--k 0: ...``),
    the rest by :func:`cli_message`."""
    message, param = str(exc), getattr(exc, "param", None)
    if param and message.startswith(f"{param}="):
        flag = "--" + _FLAG_FOR.get(param, param).replace("_", "-")
        return flag + " " + cli_message(message[len(param) + 1 :], app)
    return cli_message(message, app)


METRICS_HELP = "comma-separated metric names"
DEFAULT_METRICS_TEXT = "ndcg@10,mrr@10,recall@100,map"  # rankwise.metrics.DEFAULT_METRICS, written out for --help
