"""Run a restorer on images of any size: x8 and x2 from an x4 net, tiles with context margins
(`glyphsr_core.tiling.context`), so memory is bounded by the tile size, never by the image.

The image's true borders (not the tiles' inner borders) are first extended by the net's receptive
field with edge-replicated pixels, and that part of the output is cropped away: a net whose
convolutions pad with zeros otherwise sees black beyond the edge and draws a dark frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .. import defaults
from ..errors import InvalidInputError
from ..tiling.context import tile_outputs
from .degrid import PhaseEqualized
from .split import is_compact

SUPPORTED_SCALES = (2, 4, 8)
#: input detail (8-bit levels of deviation from the local mean, largest within 4 px) up to which the
#: result is bicubic, and from which it is the net's: flat areas and clean gradients stay below a level
SMOOTH_LEVELS = (1.0, 2.5)
MAX_SIDE = 16384
#: input pixels around a tile that its smooth-area blend reads: bicubic needs 2 (+1), the detail weight
#: 1 (local mean) + 4 (nearby max) + 1 (bilinear enlargement); more costs a little time, never changes a value
BLEND_CONTEXT = 8


class RestoreInputError(InvalidInputError):
    """An image or setting the restorer cannot work with; the message names it."""


def border_context(model: torch.nn.Module, context_margin: int) -> int:
    """Input pixels of edge-replicated context added beyond the image's true borders.

    A compact net's receptive field is known (one pixel per 3x3 conv, plus the phase window); for other
    architectures the tile margin (`context_margin // 2`) is what the tiler gives every inner edge, so
    the borders get as much.
    """
    if is_compact(model):
        return model.receptive_field
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
    _, _, height, width = images.shape
    return smooth_tile_as_bicubic(images, out, (0, height, 0, width))


def smooth_tile_as_bicubic(images: torch.Tensor, piece: torch.Tensor, keep: tuple[int, int, int, int]) -> torch.Tensor:
    """`smooth_areas_as_bicubic` for one tile: `piece` is the upscale of `images[..., y0:y1, x0:x1]`
    (`keep`, input pixels). Bicubic and detail weight are computed from that part of the input and
    `BLEND_CONTEXT` pixels around it, which they fully depend on, so the result equals the whole
    image's there (tested) while memory follows the tile."""
    y0, y1, x0, x1 = keep
    _, _, height, width = images.shape
    s = piece.shape[-1] // (x1 - x0)
    ry0, ry1 = max(0, y0 - BLEND_CONTEXT), min(height, y1 + BLEND_CONTEXT)
    rx0, rx1 = max(0, x0 - BLEND_CONTEXT), min(width, x1 + BLEND_CONTEXT)
    region = images[:, :, ry0:ry1, rx0:rx1]
    size = ((ry1 - ry0) * s, (rx1 - rx0) * s)
    bicubic = resize_bchw(region, size, Image.Resampling.BICUBIC).to(piece)
    weight = F.interpolate(detail_weight(region.float()), size=size, mode="bilinear", align_corners=False).to(piece)
    crop = (slice(None), slice(None), slice((y0 - ry0) * s, (y1 - ry0) * s), slice((x0 - rx0) * s, (x1 - rx0) * s))
    bicubic, weight = bicubic[crop], weight[crop]
    return bicubic + weight * (piece - bicubic)


def restore_tiles(model: torch.nn.Module, net_scale: int, images: torch.Tensor, scale: int, *,
                  tile: int = defaults.RESTORE_TILE, context_margin: int = defaults.RESTORE_CONTEXT_MARGIN,
                  check_cancel: Callable[[], None] | None = None, border: int | None = None,
                  raw: bool = False) -> Iterator[tuple[tuple[int, int], torch.Tensor, int, int]]:
    """`restore`'s result one tile at a time: ((y, x) of the tile in the output, its pixels (B, 3, h, w)
    in 0..1, tiles done, tile count). Memory follows the tile: nothing image-sized is made at x2 and
    x4 (x8 makes the input's bicubic x2 first). `restore` and `restore_pil` assemble these."""
    if scale not in SUPPORTED_SCALES:
        raise RestoreInputError(f"scale must be one of {', '.join(map(str, SUPPORTED_SCALES))}, got {scale}")
    _, _, height, width = images.shape
    check_image_size(height, width, scale)
    original, pre = images, 1
    if scale > net_scale:
        if scale % net_scale:
            raise RestoreInputError(f"x{scale} cannot be made from this x{net_scale} model")
        pre = scale // net_scale
        images = resize_bchw(images, (height * pre, width * pre), Image.Resampling.BICUBIC)
    if isinstance(model, PhaseEqualized) and (raw or scale > net_scale):
        model = model.net  # at x8 the net's periodic corrections read 0.03 of word F1 better: kept
    if border is None:
        border = border_context(model, context_margin)
    blend = is_compact(model) and scale <= net_scale and not raw  # at x8 the blend cost 0.012 of word F1
    factor = scale // pre  # output pixels per pixel of `images`
    for keep, piece, done, total in tile_outputs(model, images, net_scale, tile, context_margin, check_cancel, border):
        y0, y1, x0, x1 = keep
        if blend:
            piece = smooth_tile_as_bicubic(original, piece, keep)
        if scale < net_scale:
            piece = resize_bchw(piece, ((y1 - y0) * factor, (x1 - x0) * factor), Image.Resampling.BOX)
        yield (y0 * factor, x0 * factor), piece, done, total


def restore(model: torch.nn.Module, net_scale: int, images: torch.Tensor, scale: int, *, tile: int = defaults.RESTORE_TILE,
            context_margin: int = defaults.RESTORE_CONTEXT_MARGIN, on_tile: Callable[[int, int], None] | None = None,
            check_cancel: Callable[[], None] | None = None, border: int | None = None,
            raw: bool = False) -> torch.Tensor:
    """Upscale (B, 3, H, W) images by `scale` with a `net_scale` network.

    `border`: edge-replicated context beyond the true borders, in input pixels (default: the net's
    receptive field, `border_context`; 0 = the net's own zero padding, as ComfyUI's upscale node runs it).
    `on_tile(done, total)` after each tile (progress).

    A compact net's result at x4 and x2 is Pillow's bicubic over the input's flat areas and clean
    gradients (`smooth_areas_as_bicubic`) and the net's near any detail, less its phase grid
    (`degrid.PhaseEqualized`, as `load_restorer` gives it). At x8 the net's output is kept as it is.
    `raw`: neither, for someone else's upscaler whose look is the point (it may be a compact net too).

    Larger than the net (x8 from x4): the input is first enlarged with bicubic by scale / net_scale
    (the bundled net was trained on such inputs, measured better than running it twice). Smaller
    (x2 from x4): the net's output is reduced with Pillow's area-averaging box filter.
    """
    batch, _, height, width = images.shape
    out = torch.empty(batch, 3, height * scale, width * scale, dtype=images.dtype, device=images.device)
    for (y, x), piece, done, total in restore_tiles(model, net_scale, images, scale, tile=tile,
                                                    context_margin=context_margin, check_cancel=check_cancel,
                                                    border=border, raw=raw):
        out[:, :, y:y + piece.shape[-2], x:x + piece.shape[-1]] = piece
        if on_tile is not None:
            on_tile(done, total)
    return out


def restore_pil(model: torch.nn.Module, net_scale: int, image: Image.Image, scale: int, *,
                on_tile: Callable[[int, int], None] | None = None, **kwargs: Any) -> Image.Image:
    """PIL in, PIL out (RGB; alpha, if any, is upscaled with bicubic and kept). Each tile is rounded to
    8 bits and pasted into the output image as it comes: no float copy of the output is ever made
    (a x4 of a 24 MP photo is 1.5 GB as an 8-bit image, 4.6 GB as float). `kwargs` go to `restore_tiles`."""
    alpha = image.getchannel("A") if image.mode in ("RGBA", "LA") else None
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    rgb /= 255.0  # in place: one float copy of the input, not two
    tensor = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    result = Image.new("RGB", (image.width * scale, image.height * scale))
    for (y, x), piece, done, total in restore_tiles(model, net_scale, tensor, scale, **kwargs):
        tile = np.round(piece[0].permute(1, 2, 0).cpu().numpy() * 255.0).astype(np.uint8)
        result.paste(Image.fromarray(tile), (x, y))
        if on_tile is not None:
            on_tile(done, total)
    if alpha is not None:
        result.putalpha(alpha.resize(result.size, Image.Resampling.BICUBIC))
    return result
