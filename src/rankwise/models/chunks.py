"""Length-sorted chunks for training forward passes: a batch with a few long texts does not pad
every short one to their length (less compute and activation memory, the same result up to float
rounding). Shared by every model family that runs a transformers backbone."""

from __future__ import annotations

import torch


def length_chunks(lengths: list[int], chunk_tokens: int | None) -> list[list[int]]:
    """Indices grouped into chunks of at most ``chunk_tokens`` padded tokens, longest first (a chunk's
    padded size is its first member's length times its size). ``None``: one chunk in input order."""
    if not chunk_tokens:
        return [list(range(len(lengths)))]
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    chunks: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and (len(current) + 1) * lengths[current[0]] > chunk_tokens:
            chunks.append(current)
            current = []
        current.append(i)
    if current:
        chunks.append(current)
    return chunks


def restore_order(out: torch.Tensor, chunks: list[list[int]], chunk_tokens: int | None) -> torch.Tensor:
    """Rows of the concatenated chunk outputs back in input order."""
    if not chunk_tokens:
        return out
    where = torch.empty(len(out), dtype=torch.long, device=out.device)
    where[torch.tensor([i for c in chunks for i in c], device=out.device)] = torch.arange(len(out), device=out.device)
    return out[where]
