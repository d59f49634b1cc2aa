"""ControlNet residuals of diffusers (a tuple of down-block tensors + one mid-block tensor) as the
residual dicts that `glyphsr_core.sampling.fusion.blend_residuals` blends, and back.

The dict mirrors ComfyUI's control dict: down-block residuals under "output" (they feed the UNet's
skip connections), the mid-block residual under "middle". Fusion itself is never re-implemented here.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from ..sampling.fusion import blend_residuals

Residuals = tuple[tuple[torch.Tensor, ...], torch.Tensor]


def to_dict(down: Sequence[torch.Tensor], mid: torch.Tensor) -> dict[str, list[torch.Tensor]]:
    return {"input": [], "middle": [mid], "output": list(down)}


def from_dict(residuals: dict[str, list[torch.Tensor]]) -> Residuals:
    return tuple(residuals["output"]), residuals["middle"][0]


def fuse(scene: Residuals, text: Residuals, beta: float, beta_map: Any = None, chunks: int = 1) -> Residuals:
    """(1 - beta) * scene + beta * text per residual; a `fusion.BetaMap` replaces `beta`.

    `chunks` is the number of prompt groups stacked in the batch (2 with CFG: negative, positive).
    """
    return from_dict(blend_residuals(to_dict(*scene), to_dict(*text), beta=beta, beta_map=beta_map, chunks=chunks))
