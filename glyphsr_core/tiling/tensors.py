"""Per-tile crops and stacks of the tensors that travel with a tile batch.

A batch of K tiles is one model call on K x B rows (B images), tile-major: row k*B + b is tile k
of image b. Hints, masks and prompt embeddings follow the same order, so every row sees its own
tile's crop and its own tile's words.
"""

from __future__ import annotations

import math

import torch

from ..errors import InvalidInputError
from .grid import Tile


def repeat_rows(tensor: torch.Tensor, rows: int, what: str = "tensor") -> torch.Tensor:
    """`tensor` with exactly `rows` rows: as is, a batch of one repeated, or cycled like ComfyUI's broadcast."""
    if rows < 1:
        raise InvalidInputError(f"{what}: rows must be >= 1, got {rows}")
    n = tensor.shape[0]
    if n == rows:
        return tensor
    if n == 0:
        raise InvalidInputError(f"{what} is an empty batch")
    if n == 1:
        return tensor.expand(rows, *tensor.shape[1:])
    return tensor.index_select(0, torch.arange(rows, device=tensor.device) % n)


def crop_tiles(full: torch.Tensor, tiles: list[Tile], scale: int, rows: int, what: str = "hint") -> torch.Tensor:
    """The tiles' regions of `full` ([N, C, H*scale, W*scale]), each with `rows` rows, stacked tile-major."""
    if full.ndim != 4:
        raise InvalidInputError(f"{what} must be a [B, C, H, W] tensor to be tiled, got shape {tuple(full.shape)}")
    crops = []
    for t in tiles:
        ys, xs = t.slices(scale)
        if ys.stop > full.shape[-2] or xs.stop > full.shape[-1]:
            raise InvalidInputError(f"{what} of {full.shape[-2]}x{full.shape[-1]} px is smaller than tile {t.index} "
                                    f"(ends at {ys.stop}x{xs.stop} px)")
        crops.append(repeat_rows(full[..., ys, xs], rows, what))
    return crops[0] if len(crops) == 1 else torch.cat(crops)


def stack_context(tensors: list[torch.Tensor], rows: int, what: str = "prompt embedding") -> torch.Tensor:
    """Prompt embeddings [n, tokens, dim] of several tiles as one [K*rows, tokens, dim] tensor.

    Token counts differ when one tile's words need a second 77-token chunk; each is repeated up
    to the least common multiple, as ComfyUI does when it batches conds: attention over a context
    repeated n times equals attention over the context once.
    """
    if not tensors:
        raise InvalidInputError(f"no {what}s to stack")
    dims = {tuple(t.shape[2:]) for t in tensors}
    if any(t.ndim != 3 for t in tensors) or len(dims) != 1:
        raise InvalidInputError(f"every tile's {what} must be [batch, tokens, dim] with the same dim, got "
                                f"{[tuple(t.shape) for t in tensors]}")
    length = math.lcm(*(t.shape[1] for t in tensors))
    fitted = [repeat_rows(t, rows, what).repeat(1, length // t.shape[1], 1) for t in tensors]
    return torch.cat(fitted)
