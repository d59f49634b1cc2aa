"""Blend the control residuals of the scene and text ControlNet branches.

A ControlNet returns a dict of residual lists (`input`, `middle`, `output`; entries may be None).
TS-ControlNet runs two branches on the same noisy latent and adds one blended residual set to the
UNet, so the UNet still runs once per step:

    r = (1 - beta) * r_scene + beta * r_text

`beta` is a scalar, or a map made from a text mask (`beta_text` inside the text, `beta_scene`
outside), resized with area averaging to each residual's resolution. The blend is written so that
beta 0 returns the scene residual bit for bit and beta 1 the text residual, and a constant map
equals the same scalar exactly. Inputs are never modified (ComfyUI scales residuals in place later,
and other ControlNets in a chain may share tensors).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..errors import InvalidInputError

RESIDUAL_KEYS = ("input", "middle", "output")


class FusionError(InvalidInputError):
    """Residual dicts or beta inputs that cannot be blended."""


def check_beta(value: float, name: str = "beta") -> float:
    value = float(value)
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise FusionError(f"{name} must be between 0 and 1, got {value}")
    return value


def dilate_mask(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """Grow a [B,1,H,W] mask by `pixels` in every direction (square max filter)."""
    if pixels < 0:
        raise FusionError(f"mask dilation must be >= 0 pixels, got {pixels}")
    if pixels == 0:
        return mask
    return F.max_pool2d(mask, kernel_size=2 * pixels + 1, stride=1, padding=pixels)


def center_crop_to_aspect(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Crop [.., H, W] to the aspect ratio of height x width, centred.

    The ControlNet hint is fitted to the latent the same way (centre crop, then resize), so a mask
    treated like this stays aligned with the hint.
    """
    old_h, old_w = image.shape[-2:]
    old_aspect, new_aspect = old_w / old_h, width / height
    x = y = 0
    if old_aspect > new_aspect:
        x = round((old_w - old_w * (new_aspect / old_aspect)) / 2)
    elif old_aspect < new_aspect:
        y = round((old_h - old_h * (old_aspect / new_aspect)) / 2)
    return image[..., y:old_h - y, x:old_w - x]


def broadcast_batch(tensor: torch.Tensor, batch: int, chunks: int = 1) -> torch.Tensor:
    """Spread a per-image tensor over a sampler batch of `chunks` cond groups (cond, uncond ...).

    The sampler concatenates the latent batch once per cond group, so item i of the batch belongs to
    image i % (batch // chunks). A batch-1 tensor applies to every item; a shorter batch repeats.
    """
    if tensor.shape[0] == batch:
        return tensor
    if tensor.shape[0] == 1:
        return tensor.expand(batch, *tensor.shape[1:])
    chunks = max(1, int(chunks))
    per_chunk = max(1, batch // chunks)
    index = (torch.arange(batch, device=tensor.device) % per_chunk) % tensor.shape[0]
    return tensor.index_select(0, index)


@dataclass
class BetaMap:
    """A text mask turned into a per-pixel beta: `beta_text` where mask=1, `beta_scene` where 0.

    `mask` is [M,1,H,W] in 0..1 at image resolution (already dilated). Per-resolution weights are
    cached (cleared with `clear()`), since every sampler step asks for the same sizes.
    """

    mask: torch.Tensor
    beta_text: float
    beta_scene: float
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def weights(self, height: int, width: int, batch: int, chunks: int, dtype: torch.dtype,
                device: torch.device) -> torch.Tensor:
        """The beta weight for a [batch, C, height, width] residual: [batch, 1, height, width]."""
        key = (height, width, batch, chunks, dtype, str(device))
        cached = self._cache.get(key)
        if cached is None:
            # resize the mask, not the beta map: area averaging keeps 0 and 1 exact, so a full mask
            # gives exactly beta_text.
            mask = center_crop_to_aspect(self.mask.to(device=device, dtype=torch.float32), height, width)
            mask = F.interpolate(mask, size=(height, width), mode="area").to(dtype)
            text = torch.tensor(self.beta_text, dtype=dtype, device=device)
            scene = torch.tensor(self.beta_scene, dtype=dtype, device=device)
            cached = broadcast_batch(mask * text + (1 - mask) * scene, batch, chunks)
            self._cache[key] = cached
        return cached

    def clear(self) -> None:
        self._cache.clear()

    @property
    def constant(self) -> float | None:
        """The single beta this map applies everywhere, or None when it varies."""
        if self.beta_text == self.beta_scene:
            return self.beta_text
        if bool((self.mask == 1).all()):
            return self.beta_text
        if bool((self.mask == 0).all()):
            return self.beta_scene
        return None


def beta_map_from_mask(mask: torch.Tensor, beta_text: float, beta_scene: float, dilation: int = 0) -> BetaMap:
    """Build a BetaMap from a mask: [H,W], [B,H,W] (ComfyUI MASK) or [B,1,H,W], values 0..1."""
    beta_text = check_beta(beta_text, "beta_text")
    beta_scene = check_beta(beta_scene, "beta_scene")
    if not isinstance(mask, torch.Tensor):
        raise FusionError(f"text mask must be a tensor, got {type(mask).__name__}")
    if mask.ndim == 2:
        mask = mask[None, None]
    elif mask.ndim == 3:
        mask = mask[:, None]
    elif mask.ndim != 4 or mask.shape[1] != 1:
        raise FusionError(f"text mask must be [H,W], [B,H,W] or [B,1,H,W], got shape {tuple(mask.shape)}")
    if mask.shape[0] == 0 or mask.shape[-1] == 0 or mask.shape[-2] == 0:
        raise FusionError(f"text mask is empty (shape {tuple(mask.shape)})")
    mask = dilate_mask(mask.detach().float().clamp(0.0, 1.0), dilation)
    return BetaMap(mask=mask, beta_text=beta_text, beta_scene=beta_scene)


def _blend_one(scene: torch.Tensor | None, text: torch.Tensor | None, beta: float,
               beta_map: BetaMap | None, chunks: int) -> torch.Tensor | None:
    if scene is None and text is None:
        return None
    ref = scene if scene is not None else text
    if scene is not None and text is not None and scene.shape != text.shape:
        raise FusionError(f"scene and text residuals differ in shape: {tuple(scene.shape)} vs {tuple(text.shape)}")
    if beta_map is None:
        weight = torch.tensor(beta, dtype=ref.dtype, device=ref.device)
    else:
        if ref.ndim != 4:
            raise FusionError(f"a beta map needs [B,C,H,W] residuals, got shape {tuple(ref.shape)}")
        weight = beta_map.weights(ref.shape[-2], ref.shape[-1], ref.shape[0], chunks, ref.dtype, ref.device)
    # a missing residual is a zero residual
    if text is None:
        return (1 - weight) * scene
    if scene is None:
        return weight * text
    return (1 - weight) * scene + weight * text


def blend_residuals(scene: dict, text: dict, beta: float = 0.5, beta_map: BetaMap | None = None,
                    chunks: int = 1) -> dict:
    """`(1 - beta) * scene + beta * text` for every residual; new tensors, inputs untouched.

    `beta_map` (from `beta_map_from_mask`) replaces the scalar. `chunks` is the number of cond groups
    sharing the batch (ComfyUI's `batched_number`), used to broadcast a per-image mask.
    Keys missing from one dict and None entries count as zero residuals.
    """
    if beta_map is None:
        beta = check_beta(beta)
    out: dict = {}
    for key in sorted(set(scene) | set(text), key=lambda k: (k not in RESIDUAL_KEYS, str(k))):
        s_list = scene.get(key) or []
        t_list = text.get(key) or []
        if s_list and t_list and len(s_list) != len(t_list):
            raise FusionError(f"scene and text branches return different numbers of '{key}' residuals: "
                              f"{len(s_list)} vs {len(t_list)} (are both ControlNets for the same model?)")
        n = max(len(s_list), len(t_list))
        out[key] = [
            _blend_one(s_list[i] if s_list else None, t_list[i] if t_list else None, beta, beta_map, chunks)
            for i in range(n)
        ]
    return out
