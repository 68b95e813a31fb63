"""Mining's options (``rankwise mine``'s flags are generated from these fields), apart from the
mining code so that reading them imports nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass, field

METHODS = ("bm25", "dense", "fused")


@dataclass
class MineOptions:
    method: str = field(
        default="bm25", metadata={"help": "bm25, dense, or fused (BM25 and the dense model fused by --fusion)"}
    )
    fusion: str = field(
        default="rrf",
        metadata={"help": "fused: how BM25 and the dense ranking combine ('rrf', 'combsum:z-score', ...)"},
    )
    k: int = field(default=7, metadata={"help": "negatives per query"})
    window: tuple[int, int] = field(
        default=(1, 100), metadata={"help": "ranks a-b to draw from (1-based, inclusive); 11-100 skips the top 10"}
    )
    sampling: str = field(
        default="top", metadata={"help": "top (first k by rank) or uniform (k at random from the window)"}
    )
    margin: float | None = field(
        default=None, metadata={"help": "drop candidates scoring within this margin of the lowest positive"}
    )
    margin_mode: str = field(
        default="absolute", metadata={"help": "absolute (s <= s_pos - margin) or relative (s <= s_pos * (1 - margin))"}
    )
    teacher: str | None = field(
        default=None, metadata={"help": "model folder ('default': all-MiniLM-L6-v2) to filter and score"}
    )
    teacher_fusion: str | None = field(
        default=None,
        metadata={
            "help": "an ensemble teacher (dirA+dirB+bm25): how its scores combine ('rrf', 'combsum:z-score', ...)"
        },
    )
    teacher_margin: float | None = field(
        default=0.0,
        metadata={
            "help": "drop candidates the teacher scores above its lowest positive minus this; none keeps them all "
            "with their scores (GPL: soft labels, not a filter, handle false negatives)"
        },
    )
    teacher_scale: float = field(
        default=1.0,
        metadata={
            "help": "multiply the stored teacher scores (after the teacher_margin guard, which reads the teacher's own "
            "units): puts a teacher's margins on the student's scale for Margin-MSE"
        },
    )
    model: str | None = field(default=None, metadata={"help": "dense retriever [default: packaged all-MiniLM-L6-v2]"})
    seed: int = field(default=42, metadata={"help": "seed of uniform sampling"})
    max_length: int = field(default=256, metadata={"help": "dense: token limit for queries and documents"})
    code: bool = field(default=False, metadata={"help": "BM25: split identifiers (read_file -> read file) for code"})
    same_text_same_doc: bool = field(
        default=False, metadata={"help": "a document with a positive's exact text is no negative"}
    )
    fill_depth: int = field(
        default=0,
        metadata={
            "help": "a query the margin guard leaves short of k takes guarded candidates below the window, down to this rank"
        },
    )
    chunk: int = 2048  # queries searched at once (memory), not a mining choice

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method {self.method!r}: expected one of {', '.join(METHODS)}")
        if self.method == "fused":
            from rankwise.errors import ConfigError
            from rankwise.index.fusion import parse_fusion

            try:
                parse_fusion(self.fusion)  # a bad spec fails here, naming it
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        a, b = self.window
        if not 1 <= a <= b:
            raise ValueError(f"window {a}-{b}: expected 1 <= a <= b")
        if self.k < 1:
            raise ValueError("k must be >= 1")
        if self.sampling not in ("top", "uniform"):
            raise ValueError(f"sampling {self.sampling!r}: expected top or uniform")
        if self.margin_mode not in ("absolute", "relative"):
            raise ValueError(f"margin_mode {self.margin_mode!r}: expected absolute or relative")
        if self.margin is not None and self.margin < 0:
            raise ValueError("margin must be >= 0")
        if not self.teacher_scale > 0:
            raise ValueError(f"teacher_scale {self.teacher_scale}: expected a positive number")
        if self.fill_depth and self.fill_depth <= b:
            raise ValueError(f"fill_depth {self.fill_depth}: expected 0 (off) or a rank below the window {a}-{b}")
