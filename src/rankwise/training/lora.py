"""LoRA (Hu et al., ICLR 2022) through ``peft``, for any family whose trained module is a
transformers model (the dual encoder's and the cross-encoder's ``backbone``, the LLM reranker's ``lm``).

A frozen weight W gets a trainable low-rank update: h = W x + (alpha / r) B A x, with A (r x k)
drawn at random and B (d x r) at zero, so training starts from the unchanged model. Only A and B
(and a cross-encoder's classification head) are trained.

``TrainConfig(lora="lora:r=8,alpha=16,dropout=0.05,save=merged")``: ``targets`` names the linear
layers (``query/key/value``; default: peft's choice for the architecture); ``save=merged`` folds
B A into W when training ends (a plain folder, loaded by anything), ``save=adapter`` keeps the
adapter (``adapter_config.json``; transformers and sentence-transformers load it onto the base
model with ``peft`` installed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rankwise.errors import ConfigError


@dataclass(frozen=True)
class LoraOptions:
    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    targets: str = ""  # "query/key/value": the linear layers adapted ("": peft's default for the model)
    save: str = "merged"  # merged | adapter

    def __post_init__(self) -> None:
        if self.r < 1:
            raise ValueError(f"r={self.r}: expected a rank of at least 1")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout={self.dropout}: expected 0 <= dropout < 1")
        if self.save not in ("merged", "adapter"):
            raise ValueError(f"save={self.save}: expected merged or adapter")


def parse_lora(text: str) -> LoraOptions:
    """``"lora"`` or ``"lora:r=8,alpha=16,targets=query/value,save=adapter"``."""
    from rankwise.spec import parse_options, parse_term

    term = parse_term(text, "lora")
    if term.name != "lora":
        raise ConfigError(f"lora: unknown method {term.name!r}; peft methods supported: lora")
    return parse_options("lora", term.params, LoraOptions)


SLOTS = ("backbone", "lm")  # where each family keeps its transformers model


def _slot(model: Any) -> str | None:
    return next((a for a in SLOTS if hasattr(getattr(model, a, None), "config")), None)


def is_adapted(model: Any) -> bool:
    from peft import PeftModel

    slot = _slot(model)
    return slot is not None and isinstance(getattr(model, slot), PeftModel)


def _task_type(module: Any) -> str:
    name = type(module).__name__
    if name.endswith("ForSequenceClassification"):
        return "SEQ_CLS"  # also trains the scoring head
    return "CAUSAL_LM" if name.endswith("ForCausalLM") else "FEATURE_EXTRACTION"


def apply_lora(model: Any, options: LoraOptions) -> None:
    """Wrap the model's transformers module in LoRA adapters (once: a model already adapted is left as it is)."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise ConfigError("lora needs peft: pip install 'rankwise[lora]'") from None
    slot = _slot(model)
    if slot is None:
        raise ConfigError(f"lora adapts a transformers model; {type(model).__name__} has none")
    if is_adapted(model):
        return
    if getattr(model, "untied", False):
        raise ConfigError("lora adapts one shared tower; train untied towers without lora")
    module = getattr(model, slot)
    config = LoraConfig(
        r=options.r,
        lora_alpha=options.alpha,
        lora_dropout=options.dropout,
        target_modules=options.targets.split("/") if options.targets else None,
        task_type=_task_type(module),
    )
    setattr(model, slot, get_peft_model(module, config))


def finish_lora(model: Any, options: LoraOptions) -> None:
    """At the end of training: merge the adapters into the weights (``save=merged``) or keep them."""
    if options.save == "merged" and is_adapted(model):
        slot = _slot(model)
        setattr(model, slot, getattr(model, slot).merge_and_unload())
