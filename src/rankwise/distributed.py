"""Data-parallel training on torch.distributed (launched by ``torchrun``, ``accelerate launch``, or
``rankwise train --nproc N``).

Every process builds the same global batch (the data order and sampling are functions of seed and
step), encodes its contiguous share of each side (queries, documents, pairs), and the outputs are
gathered, so every process holds the whole batch's score matrix, labels and loss: those of one
process holding the whole batch, for every loss, negatives strategy and sampler. A document two
processes' queries share is one column with both positives marked, never a false negative. The
gradient of the loss with respect to the gathered outputs is the same on every process; each
back-propagates its own slice into the encoder, and the parameter gradients are summed across
processes. Gloo on CPU, NCCL on GPUs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Shard:
    rank: int
    world: int

    def part(self, n: int) -> slice:
        """This process's contiguous share of ``n`` items (the first ``n % world`` get one more)."""
        base, extra = divmod(n, self.world)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (1 if self.rank < extra else 0))

    def gather(self, local: torch.Tensor, n: int) -> torch.Tensor:
        """The rows of every process's share, in rank order (``n`` rows in all); no gradient."""
        sizes = [self.__class__(r, self.world).part(n) for r in range(self.world)]
        longest = max(s.stop - s.start for s in sizes)
        padded = local.new_zeros((longest, *local.shape[1:]))
        padded[: len(local)] = local.detach()
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(parts, padded.contiguous())
        return torch.cat([p[: s.stop - s.start] for p, s in zip(parts, sizes)])

    def sum_gradients(self, module: torch.nn.Module) -> None:
        """Sum each parameter's gradient across processes (every process then steps alike)."""
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.flatten() for g in grads])
        dist.all_reduce(flat)
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()


def current() -> Shard | None:
    """This process's shard when torch.distributed runs with more than one process, else None."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return Shard(dist.get_rank(), dist.get_world_size())
    return None


def init_from_env(device: torch.device | None = None) -> Shard | None:
    """Join the process group that ``torchrun`` (or accelerate) describes in the environment."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and dist.is_available() and not dist.is_initialized():
        backend = "nccl" if device is not None and device.type == "cuda" else "gloo"
        if backend == "nccl":  # object collectives (from_main, gather_each) use the current device
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    return current()


def is_main() -> bool:
    """Rank 0 (or no distributed run): the process that writes checkpoints, logs and reports."""
    shard = current()
    return shard is None or shard.rank == 0


def barrier() -> None:
    if current() is not None:
        dist.barrier()


def from_main(value: Any) -> Any:
    """Rank 0's ``value`` on every process (no distributed run: ``value``), e.g. a file only rank 0
    has read, or a decision every process must take alike."""
    if current() is None:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_each(value: Any) -> list[Any]:
    """Every process's ``value``, in rank order (no distributed run: ``[value]``)."""
    shard = current()
    if shard is None:
        return [value]
    out: list[Any] = [None] * shard.world
    dist.all_gather_object(out, value)
    return out


def encode_shared(encode: Callable[[list[str]], np.ndarray], texts: list[str]) -> np.ndarray:
    """``encode(texts)`` with the work split over the data-parallel processes: each encodes its
    contiguous share and every process receives all the rows, in order, so N processes encode a
    corpus N times faster instead of N times over (no distributed run: ``encode(texts)``)."""
    shard = current()
    if shard is None:
        return encode(texts)
    return np.concatenate(gather_each(encode(texts[shard.part(len(texts))])))  # a share may be empty: 0 rows
