"""Run a restorer on images of any size: x8 and x2 from an x4 net, tiles with context margins
(`glyphsr_core.tiling.context`), so memory is bounded by the tile size, never by the image.

The image's true borders (not the tiles' inner borders) are first extended by the net's receptive
field with edge-replicated pixels, and that part of the output is cropped away: a net whose
convolutions pad with zeros otherwise sees black beyond the edge and draws a dark frame.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .. import defaults
from ..errors import InvalidInputError
from ..tiling.context import run_tiled
from .split import is_compact

SUPPORTED_SCALES = (2, 4, 8)
#: input detail (8-bit levels of deviation from the local mean, largest within 4 px) up to which the
#: result is bicubic, and from which it is the net's: flat areas and clean gradients stay below a level
SMOOTH_LEVELS = (1.0, 2.5)
MAX_SIDE = 16384


class RestoreInputError(InvalidInputError):
    """An image or setting the restorer cannot work with; the message names it."""


def border_context(model: torch.nn.Module, context_margin: int) -> int:
    """Input pixels of edge-replicated context added beyond the image's true borders.

    A compact net's receptive field is known (one pixel per 3x3 conv); for other architectures the
    tile margin (`context_margin // 2`) is what the tiler gives every inner edge, so the borders get as much.
    """
    if is_compact(model):
        return model.num_conv + 2
    return context_margin // 2


def check_image_size(height: int, width: int, scale: int) -> None:
    """Reject images the restorer cannot produce a sensible result for, before any work."""
    if min(height, width) < 2:
        raise RestoreInputError(f"image is {width}x{height} px; the restorer needs at least 2 px on each side")
    if max(height, width) * scale > MAX_SIDE * 4:
        raise RestoreInputError(f"image is {width}x{height} px; x{scale} would be wider than {MAX_SIDE * 4} px")


def resize_bchw(images: torch.Tensor, size: tuple[int, int], method: Image.Resampling) -> torch.Tensor:
    """Resize with Pillow's filters (float mode, per channel) so results match Pillow-made references."""
    height, width = size
    arrays = images.detach().float().cpu().numpy()
    out = np.empty((*arrays.shape[:2], height, width), dtype=np.float32)
    for b in range(arrays.shape[0]):
        for c in range(arrays.shape[1]):
            out[b, c] = np.asarray(Image.fromarray(arrays[b, c], mode="F").resize((width, height), method))
    return torch.from_numpy(out).clamp(0, 1).to(device=images.device, dtype=images.dtype)


def detail_weight(images: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) in 0..1: 0 where the input is smooth (flat or a clean gradient), 1 within 4 px of any
    detail. Detail is a deviation from the 3x3 local mean of a level or two, so a linear ramp counts as
    smooth and everything near a letter, an edge or visible grain counts as detail."""
    padded = F.pad(images, (1, 1, 1, 1), mode="replicate")
    deviation = (images - F.avg_pool2d(padded, 3, stride=1)).abs().mean(dim=1, keepdim=True) * 255.0
    nearby = F.max_pool2d(F.pad(deviation, (4, 4, 4, 4), mode="replicate"), 9, stride=1)
    low, high = SMOOTH_LEVELS
    return ((nearby - low) / (high - low)).clamp(0, 1)


def smooth_areas_as_bicubic(images: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """`out` (an upscale of `images`) near any detail of the input, Pillow's bicubic where the input
    is smooth, blended by `detail_weight`. Why: over flat areas and clean gradients the compact net
    adds nothing but the small per-phase offsets of its pixel shuffle, a 4-px grid that shows over
    skies and walls; near letters even its small changes help OCR (measured), so they stay."""
    size = tuple(out.shape[-2:])
    bicubic = resize_bchw(images, size, Image.Resampling.BICUBIC).to(out)
    weight = F.interpolate(detail_weight(images.float()), size=size, mode="bilinear", align_corners=False).to(out)
    return bicubic + weight * (out - bicubic)


def restore(model: torch.nn.Module, net_scale: int, images: torch.Tensor, scale: int, *, tile: int = defaults.RESTORE_TILE,
            context_margin: int = defaults.RESTORE_CONTEXT_MARGIN, on_tile: Callable[[int, int], None] | None = None,
            check_cancel: Callable[[], None] | None = None, border: int | None = None) -> torch.Tensor:
    """Upscale (B, 3, H, W) images by `scale` with a `net_scale` network.

    `border`: edge-replicated context beyond the true borders, in input pixels (default: the net's
    receptive field, `border_context`; 0 = the net's own zero padding, as ComfyUI's upscale node runs it).

    A compact net's result at x4 and x2 is Pillow's bicubic over the input's flat areas and clean
    gradients (`smooth_areas_as_bicubic`: its 4-px grid removed there) and the net's near any detail.

    Larger than the net (x8 from x4): the input is first enlarged with bicubic by scale / net_scale
    (the bundled net was trained on such inputs, measured better than running it twice). Smaller
    (x2 from x4): the net's output is reduced with Pillow's area-averaging box filter.
    """
    if scale not in SUPPORTED_SCALES:
        raise RestoreInputError(f"scale must be one of {', '.join(map(str, SUPPORTED_SCALES))}, got {scale}")
    _, _, height, width = images.shape
    check_image_size(height, width, scale)
    original = images
    if scale > net_scale:
        if scale % net_scale:
            raise RestoreInputError(f"x{scale} cannot be made from this x{net_scale} model")
        pre = scale // net_scale
        images = resize_bchw(images, (height * pre, width * pre), Image.Resampling.BICUBIC)
    if border is None:
        border = border_context(model, context_margin)
    out = run_tiled(model, images, net_scale, tile, context_margin, on_tile, check_cancel, border)
    if is_compact(model) and scale <= net_scale:  # at x8 the blend cost 0.012 of word F1: not there
        out = smooth_areas_as_bicubic(original, out)
    if scale < net_scale:
        out = resize_bchw(out, (height * scale, width * scale), Image.Resampling.BOX)
    return out


def restore_pil(model: torch.nn.Module, net_scale: int, image: Image.Image, scale: int, **kwargs) -> Image.Image:
    """PIL in, PIL out (RGB; alpha, if any, is upscaled with bicubic and kept)."""
    alpha = image.getchannel("A") if image.mode in ("RGBA", "LA") else None
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    tensor = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    out = restore(model, net_scale, tensor, scale, **kwargs)[0].permute(1, 2, 0).numpy()
    result = Image.fromarray(np.round(out * 255.0).astype(np.uint8))
    if alpha is not None:
        result.putalpha(alpha.resize(result.size, Image.Resampling.BICUBIC))
    return result

