"""Conversions between ComfyUI tensors, numpy arrays and PIL images.

ComfyUI passes IMAGE as float [B, H, W, C] in 0..1 and MASK as float [B, H, W]. Images from other
nodes may carry 1 (grayscale), 2 (gray + alpha), 3 or 4 (RGBA) channels; everything the method
reads is normalised to RGB here, in one place.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
from PIL import Image

from .errors import ImageInputError

if TYPE_CHECKING:  # torch is imported where tensors are made: OCR and analysis run without it
    import torch


def to_rgb_uint8(array: np.ndarray) -> np.ndarray:
    """HxW, HxWx1, HxWx2, HxWx3 or HxWx4 (uint8 or float 0..1) -> contiguous HxWx3 uint8 RGB.

    Alpha is composited over white, the usual paper/sign background, so transparent areas do not
    turn into black blobs that OCR reads as ink.
    """
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise ImageInputError(f"expected an image of shape HxW or HxWxC with C in 1..4, got {tuple(array.shape)}")
    if array.dtype != np.uint8:
        array = np.clip(np.nan_to_num(array.astype(np.float32)) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    channels = array.shape[2]
    if channels in (2, 4):
        color = array[:, :, :-1].astype(np.float32)
        alpha = array[:, :, -1:].astype(np.float32) / 255.0
        array = (color * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)
        channels -= 1
    if channels == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array)


def open_image_file(path: Path) -> Image.Image:
    """An image file's picture as RGB over white, or a clear error naming the file (every format:
    glyphsr_core.imagefiles)."""
    from .imagefiles import open_image_file as open_file

    return open_file(path)


def to_pil_rgb(image: Image.Image | np.ndarray) -> Image.Image:
    if isinstance(image, Image.Image):
        if image.mode == "RGB":
            return image
        return Image.fromarray(to_rgb_uint8(np.asarray(image.convert("RGBA" if "A" in image.mode else "RGB"))))
    return Image.fromarray(to_rgb_uint8(np.asarray(image)))


def check_comfy_images(images: torch.Tensor, name: str = "image") -> torch.Tensor:
    """Validate a ComfyUI IMAGE batch; a single HxWxC image is promoted to a batch of one."""
    import torch

    if not isinstance(images, torch.Tensor):
        raise ImageInputError(f"'{name}' must be an IMAGE tensor, got {type(images).__name__}")
    if images.ndim == 3:
        images = images.unsqueeze(0)
    if images.ndim != 4:
        raise ImageInputError(f"'{name}' must be an IMAGE batch [B, H, W, C], got shape {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise ImageInputError(f"'{name}' is an empty batch: connect at least one image")
    if images.shape[1] == 0 or images.shape[2] == 0:
        raise ImageInputError(f"'{name}' has an empty size {images.shape[2]}x{images.shape[1]}")
    if images.shape[-1] not in (1, 2, 3, 4):
        raise ImageInputError(f"'{name}' must have 1-4 channels in the last dimension, got {images.shape[-1]}")
    return images


def comfy_to_rgb(images: torch.Tensor, name: str = "image") -> torch.Tensor:
    """ComfyUI IMAGE [B, H, W, C] -> [B, 3, H, W] RGB: alpha dropped, grey (with or without alpha) repeated.

    The colour fix and the ControlNet hints read images this way.
    """
    images = check_comfy_images(images, name)
    rgb = images[..., :1].repeat(1, 1, 1, 3) if images.shape[-1] < 3 else images[..., :3]
    return rgb.movedim(-1, 1)


def split_channels(images: torch.Tensor, name: str = "image") -> tuple[torch.Tensor, torch.Tensor | None]:
    """IMAGE [B, H, W, C] -> ([B, 3, H, W] float32 colour, the extra channels (alpha) or None).

    The tensor twin of glyphsr_core.imagefiles' alpha handling, for nodes that repair pixels in place
    (Keep Words): alpha passes through untouched; image files are composited over white instead."""
    images = check_comfy_images(images, name)
    channels = images.shape[-1]
    rgb = images[..., :1].repeat(1, 1, 1, 3) if channels < 3 else images[..., :3]
    extra = images[..., 1:] if channels == 2 else images[..., 3:] if channels == 4 else None
    return rgb.movedim(-1, 1).float().cpu(), extra


def join_channels(repaired: torch.Tensor, original: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
    """[B, 3, H, W] back to the input's layout: grey stays grey (changed pixels only), alpha passes through."""
    import torch

    out = repaired.movedim(1, -1)
    if original.ndim == 3:
        original = original.unsqueeze(0)
    channels = original.shape[-1]
    if channels < 3:
        grey = out.mean(dim=-1, keepdim=True)
        changed = (out != original[..., :1].float()).any(dim=-1, keepdim=True)
        out = torch.where(changed, grey, original[..., :1].float())
    if extra is not None:
        out = torch.cat([out, extra.to(out)], dim=-1)
    return out


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL (RGB or L) -> [1, C, H, W] float32 in 0..1 (the headless pipeline's image layout)."""
    import torch

    array = np.asarray(image, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[..., None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).unsqueeze(0)


def tensor_to_pil(image: torch.Tensor) -> Image.Image:
    """[3, H, W] float in 0..1 -> PIL RGB (rounded, clamped)."""
    array = (image.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0).round().astype("uint8")
    return Image.fromarray(array)


def comfy_to_pil(images: torch.Tensor, name: str = "image") -> list[Image.Image]:
    """ComfyUI IMAGE batch -> one PIL RGB image per batch item."""
    import torch

    images = check_comfy_images(images, name)
    arrays = images.detach().to("cpu", torch.float32).numpy()
    return [Image.fromarray(to_rgb_uint8(a)) for a in arrays]


def pil_to_comfy(images: Sequence[Image.Image]) -> torch.Tensor:
    """PIL images of one size -> ComfyUI IMAGE [B, H, W, 3] float32."""
    import torch

    arrays = [np.asarray(to_pil_rgb(im), dtype=np.float32) / 255.0 for im in images]
    return torch.from_numpy(np.stack(arrays, axis=0))


def masks_to_comfy(masks: Sequence[Image.Image]) -> torch.Tensor:
    """PIL "L" masks of one size -> ComfyUI MASK [B, H, W] float32."""
    import torch

    arrays = [np.asarray(m.convert("L"), dtype=np.float32) / 255.0 for m in masks]
    return torch.from_numpy(np.stack(arrays, axis=0))


def gray_to_comfy_rgb(masks: Sequence[Image.Image]) -> torch.Tensor:
    """PIL "L" images -> ComfyUI IMAGE [B, H, W, 3] (gray repeated), e.g. a glyph map."""
    return masks_to_comfy(masks).unsqueeze(-1).repeat(1, 1, 1, 3)
