"""Run a restorer on images of any size: tiles with context margins, x8 and x2 from an x4 net.

Tiles overlap by `tile_overlap` input pixels and each tile's outer half-overlap is discarded, so a
net whose receptive field fits in that margin (the bundled one: 10 px) gives the untiled result
exactly; memory is bounded by the tile size, never by the image.

The image's true borders (not the tiles' inner borders) are first extended by the net's receptive
field with edge-replicated pixels, and that part of the output is cropped away: a net whose
convolutions pad with zeros otherwise sees black beyond the edge and draws a dark frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..errors import InvalidInputError
from .compact import CompactSR

SUPPORTED_SCALES = (2, 4, 8)
MAX_SIDE = 16384


class RestoreInputError(InvalidInputError):
    """An image or setting the restorer cannot work with; the message names it."""


@dataclass(frozen=True)
class TilePlan:
    """Where each tile reads (with margin) and which part of its output is kept."""

    read: tuple[int, int, int, int]   # y0, y1, x0, x1 in input pixels
    keep: tuple[int, int, int, int]   # y0, y1, x0, x1 in input pixels (inside `read`)


def _axis_tiles(length: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(read0, read1, keep0, keep1) along one axis."""
    if length <= tile:
        return [(0, length, 0, length)]
    margin = overlap // 2
    core = tile - 2 * margin
    out = []
    start = 0
    while start < length:
        end = min(length, start + core)
        out.append((max(0, start - margin), min(length, end + margin), start, end))
        start = end
    return out


def plan_tiles(height: int, width: int, tile: int, overlap: int) -> list[TilePlan]:
    """Tiles of at most `tile` x `tile` input pixels covering the image."""
    if tile < 16:
        raise RestoreInputError(f"tile_size must be at least 16 pixels, got {tile}")
    if not 0 <= overlap <= tile // 2:
        raise RestoreInputError(f"tile_overlap must be between 0 and half the tile size ({tile // 2}), got {overlap}")
    return [TilePlan((ry0, ry1, rx0, rx1), (ky0, ky1, kx0, kx1))
            for ry0, ry1, ky0, ky1 in _axis_tiles(height, tile, overlap)
            for rx0, rx1, kx0, kx1 in _axis_tiles(width, tile, overlap)]


def border_context(model: torch.nn.Module, overlap: int) -> int:
    """Input pixels of edge-replicated context added beyond the image's true borders.

    A compact net's receptive field is known (one pixel per 3x3 conv); for other architectures the
    tile margin (`overlap // 2`) is what the tiler gives every inner edge, so the borders get as much.
    """
    if isinstance(model, CompactSR):
        return model.num_conv + 2
    return overlap // 2


@torch.no_grad()
def run_tiled(model: torch.nn.Module, images: torch.Tensor, net_scale: int, tile: int, overlap: int,
              on_tile: Callable[[int, int], None] | None = None,
              check_cancel: Callable[[], None] | None = None, border: int = 0) -> torch.Tensor:
    """(B, 3, H, W) in 0..1 -> (B, 3, H*s, W*s), clamped; the output lives on the input's device.

    `border` > 0: the image is extended by that many edge-replicated pixels on each side and tiles
    that touch a true border read that context too (the tile plan, and so the tile count, are those
    of the unextended image). `check_cancel` is called before each tile (it raises to stop);
    `on_tile(done, total)` after each.
    """
    batch, _, height, width = images.shape
    plans = plan_tiles(height, width, tile, overlap)
    if border < 0:
        raise RestoreInputError(f"border context must be >= 0, got {border}")
    if border:
        images = torch.nn.functional.pad(images, (border, border, border, border), mode="replicate")
    param = next(model.parameters(), None)
    device = param.device if param is not None else images.device
    dtype = param.dtype if param is not None else images.dtype
    out = torch.empty(batch, 3, height * net_scale, width * net_scale, dtype=images.dtype, device=images.device)
    s = net_scale
    for done, plan in enumerate(plans, start=1):
        if check_cancel is not None:
            check_cancel()
        ry0, ry1, rx0, rx1 = plan.read
        ky0, ky1, kx0, kx1 = plan.keep
        if border:  # to padded coordinates; tiles on a true border read the replicated context too
            ry0, ry1 = ry0 + (border if ry0 else 0), ry1 + border + (border if ry1 == height else 0)
            rx0, rx1 = rx0 + (border if rx0 else 0), rx1 + border + (border if rx1 == width else 0)
            ky0, ky1, kx0, kx1 = ky0 + border, ky1 + border, kx0 + border, kx1 + border
        piece = model(images[:, :, ry0:ry1, rx0:rx1].to(device=device, dtype=dtype))
        piece = piece[:, :, (ky0 - ry0) * s:(ky1 - ry0) * s, (kx0 - rx0) * s:(kx1 - rx0) * s]
        oy, ox = (ky0 - border) * s, (kx0 - border) * s
        out[:, :, oy:oy + (ky1 - ky0) * s, ox:ox + (kx1 - kx0) * s] = piece.clamp(0, 1).to(device=images.device, dtype=images.dtype)
        if on_tile is not None:
            on_tile(done, len(plans))
    return out


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


def restore(model: torch.nn.Module, net_scale: int, images: torch.Tensor, scale: int, *, tile: int = 512,
            overlap: int = 32, on_tile: Callable[[int, int], None] | None = None,
            check_cancel: Callable[[], None] | None = None, border: int | None = None) -> torch.Tensor:
    """Upscale (B, 3, H, W) images by `scale` with a `net_scale` network.

    `border`: edge-replicated context beyond the true borders, in input pixels (default: the net's
    receptive field, `border_context`; 0 = the net's own zero padding, as ComfyUI's upscale node runs it).

    Larger than the net (x8 from x4): the input is first enlarged with bicubic by scale / net_scale
    (the bundled net was trained on such inputs, measured better than running it twice). Smaller
    (x2 from x4): the net's output is reduced with Pillow's area-averaging box filter.
    """
    if scale not in SUPPORTED_SCALES:
        raise RestoreInputError(f"scale must be one of {', '.join(map(str, SUPPORTED_SCALES))}, got {scale}")
    _, _, height, width = images.shape
    check_image_size(height, width, scale)
    if scale > net_scale:
        if scale % net_scale:
            raise RestoreInputError(f"x{scale} cannot be made from this x{net_scale} model")
        pre = scale // net_scale
        images = resize_bchw(images, (height * pre, width * pre), Image.Resampling.BICUBIC)
    if border is None:
        border = border_context(model, overlap)
    out = run_tiled(model, images, net_scale, tile, overlap, on_tile, check_cancel, border)
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

