"""High-quality -> low-quality image pairs for training and evaluation.

A degradation is a list of recorded operations ("ops"): `sample_params` draws them from a seed,
`apply_params` replays them, so every LQ image can be reproduced exactly from its metadata row.

Modes:
- `bicubic`: a plain bicubic down-scale, nothing else (the usual SR benchmark input).
- `realistic`: Real-ESRGAN-style synthesis: blur (isotropic / anisotropic Gaussian or sinc),
  random resize with a random interpolation, Gaussian or Poisson noise, JPEG, optionally a
  second order of the same, then the final resize to the LQ size with an optional sinc filter
  and JPEG in random order.
- `paper`: the GLYPH-SR authors' training degradation: bicubic down by an integer factor in 4..9
  and back up, Gaussian blur with radius U(0.5, 2.5) (Pillow's filter), then (our addition,
  since their LQ kept the HQ size) bicubic down to the LQ size of the requested scale.

Images whose sides are not multiples of the scale are cropped at the bottom/right first, so
coordinates measured on the HQ image stay valid and `LQ size * scale == cropped HQ size`.
Only numpy and Pillow are used.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from ..errors import InvalidInputError

MODES = ("realistic", "bicubic", "paper")
MAX_SCALE = 16

_INTERPOLATIONS = {
    "area": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "nearest": Image.Resampling.NEAREST,
}


class DegradationError(InvalidInputError):
    """A degradation was asked for with a scale, mode, image or parameters it cannot use."""


@dataclass(frozen=True)
class RealisticRanges:
    """Ranges `realistic` draws from (Real-ESRGAN's, with the intermediate down-scale tied to the scale)."""

    kernel_sizes: tuple[int, ...] = (7, 9, 11, 13, 15, 17, 19, 21)
    kernel_probs: tuple[float, float, float] = (0.45, 0.45, 0.10)  # iso, aniso, sinc
    sigma_1: tuple[float, float] = (0.2, 3.0)
    sigma_2: tuple[float, float] = (0.2, 1.5)
    blur_prob_2: float = 0.8
    resize_probs: tuple[float, float, float] = (0.2, 0.7, 0.1)  # up, down, keep
    resize_up: tuple[float, float] = (1.0, 1.5)
    resize_down_min: float = 0.6  # times 1/scale: never much below the final size
    resize_2: tuple[float, float] = (0.3, 1.2)
    gaussian_noise_prob: float = 0.5
    noise_sigma_1: tuple[float, float] = (1.0, 30.0)  # in 0..255 units
    noise_sigma_2: tuple[float, float] = (1.0, 25.0)
    poisson_scale_1: tuple[float, float] = (0.05, 3.0)
    poisson_scale_2: tuple[float, float] = (0.05, 2.5)
    gray_noise_prob: float = 0.4
    jpeg_quality_1: tuple[int, int] = (30, 95)
    jpeg_quality_2: tuple[int, int] = (30, 95)
    second_order_prob: float = 0.5
    final_sinc_prob: float = 0.3


PAPER_FACTORS = (4, 5, 6, 7, 8, 9)
PAPER_BLUR_RADIUS = (0.5, 2.5)


def check_scale(scale: Any) -> int:
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or not 1 <= int(scale) <= MAX_SCALE:
        raise DegradationError(f"scale must be a whole number from 1 to {MAX_SCALE} (e.g. 2, 4, 8), got {scale!r}")
    return int(scale)


def cropped_size(width: int, height: int, scale: int) -> tuple[int, int]:
    """The largest size <= (width, height) whose sides are multiples of `scale`."""
    scale = check_scale(scale)
    w, h = (width // scale) * scale, (height // scale) * scale
    if w < scale or h < scale:
        raise DegradationError(f"a {width}x{height} image is too small to shrink by x{scale}")
    return w, h


def lq_size(width: int, height: int, scale: int) -> tuple[int, int]:
    """Size of the LQ image made from a `width` x `height` HQ image at `scale`."""
    w, h = cropped_size(width, height, scale)
    return w // scale, h // scale


def crop_to_multiple(image: Image.Image, scale: int) -> Image.Image:
    """Crop the bottom/right so both sides are multiples of `scale` (pixel coordinates stay valid)."""
    size = cropped_size(image.width, image.height, scale)
    return image if size == image.size else image.crop((0, 0, *size))


# ---------------------------------------------------------------------------------------------
# sampling


def sample_params(size: tuple[int, int], scale: int, seed: int, mode: str = "realistic",
                  ranges: RealisticRanges = RealisticRanges()) -> dict[str, Any]:
    """Draw a degradation for an HQ image of `size` (W, H); the result is JSON-serialisable."""
    scale = check_scale(scale)
    if mode not in MODES:
        raise DegradationError(f"unknown degradation mode {mode!r}; expected one of {', '.join(MODES)}")
    width, height = int(size[0]), int(size[1])
    crop = cropped_size(width, height, scale)
    target = (crop[0] // scale, crop[1] // scale)
    rng = np.random.default_rng(int(seed))
    if mode == "bicubic":
        ops = [_resize(target, "bicubic")]
    elif mode == "paper":
        ops = _paper_ops(crop, target, rng)
    else:
        ops = _realistic_ops(crop, target, scale, rng, ranges)
    return {"mode": mode, "scale": scale, "seed": int(seed), "hq_size": [width, height], "crop": list(crop),
            "lq_size": list(target), "ops": ops}


def _resize(size: tuple[int, int], interpolation: str) -> dict[str, Any]:
    return {"op": "resize", "size": [max(1, int(size[0])), max(1, int(size[1]))], "interpolation": interpolation}


def _paper_ops(crop: tuple[int, int], target: tuple[int, int], rng: np.random.Generator) -> list[dict[str, Any]]:
    factor = int(rng.choice(PAPER_FACTORS))
    radius = float(rng.uniform(*PAPER_BLUR_RADIUS))
    return [
        _resize((crop[0] // factor, crop[1] // factor), "bicubic") | {"factor": factor},
        _resize(crop, "bicubic"),
        {"op": "pil_gaussian_blur", "radius": round(radius, 4)},
        _resize(target, "bicubic"),
    ]


def _blur_op(rng: np.random.Generator, ranges: RealisticRanges, sigma_range: tuple[float, float]) -> dict[str, Any]:
    size = int(rng.choice(ranges.kernel_sizes))
    kind = str(rng.choice(["iso", "aniso", "sinc"], p=list(ranges.kernel_probs)))
    if kind == "sinc":
        # a wider pass band for large kernels, as Real-ESRGAN does, to avoid over-blurring
        low = math.pi / 3 if size < 13 else math.pi / 5
        return {"op": "blur", "kernel": "sinc", "size": size, "omega_c": round(float(rng.uniform(low, math.pi)), 4)}
    sigma_x = float(rng.uniform(*sigma_range))
    sigma_y = sigma_x if kind == "iso" else float(rng.uniform(*sigma_range))
    theta = 0.0 if kind == "iso" else float(rng.uniform(-math.pi, math.pi))
    return {"op": "blur", "kernel": kind, "size": size, "sigma_x": round(sigma_x, 4), "sigma_y": round(sigma_y, 4),
            "theta": round(theta, 4)}


def _noise_op(rng: np.random.Generator, ranges: RealisticRanges, order: int) -> dict[str, Any]:
    gray = bool(rng.random() < ranges.gray_noise_prob)
    noise_seed = int(rng.integers(0, 2**31 - 1))
    if rng.random() < ranges.gaussian_noise_prob:
        sigma = rng.uniform(*(ranges.noise_sigma_1 if order == 1 else ranges.noise_sigma_2))
        return {"op": "gaussian_noise", "sigma": round(float(sigma), 4), "gray": gray, "seed": noise_seed}
    scale = rng.uniform(*(ranges.poisson_scale_1 if order == 1 else ranges.poisson_scale_2))
    return {"op": "poisson_noise", "scale": round(float(scale), 4), "gray": gray, "seed": noise_seed}


def _random_interpolation(rng: np.random.Generator) -> str:
    return str(rng.choice(["area", "bilinear", "bicubic"]))


def _realistic_ops(crop: tuple[int, int], target: tuple[int, int], scale: int, rng: np.random.Generator,
                   ranges: RealisticRanges) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = [_blur_op(rng, ranges, ranges.sigma_1)]
    direction = str(rng.choice(["up", "down", "keep"], p=list(ranges.resize_probs)))
    factor = 1.0
    if direction == "up":
        factor = float(rng.uniform(*ranges.resize_up))
    elif direction == "down":
        factor = float(rng.uniform(max(0.05, ranges.resize_down_min / scale), 1.0))
    size = (max(1, round(crop[0] * factor)), max(1, round(crop[1] * factor)))
    ops.append(_resize(size, _random_interpolation(rng)) | {"factor": round(factor, 4)})
    ops.append(_noise_op(rng, ranges, 1))
    ops.append({"op": "jpeg", "quality": int(rng.integers(ranges.jpeg_quality_1[0], ranges.jpeg_quality_1[1] + 1))})
    if rng.random() < ranges.second_order_prob:
        if rng.random() < ranges.blur_prob_2:
            ops.append(_blur_op(rng, ranges, ranges.sigma_2))
        factor2 = float(rng.uniform(*ranges.resize_2))
        # relative to the final size, so the second order never shrinks far below it
        size2 = (max(1, round(target[0] * max(factor2 * scale, 1.0))), max(1, round(target[1] * max(factor2 * scale, 1.0))))
        ops.append(_resize(size2, _random_interpolation(rng)) | {"factor": round(factor2, 4)})
        ops.append(_noise_op(rng, ranges, 2))
    final_resize = _resize(target, _random_interpolation(rng))
    final_sinc = None
    if rng.random() < ranges.final_sinc_prob:
        size_k = int(rng.choice(ranges.kernel_sizes))
        final_sinc = {"op": "blur", "kernel": "sinc", "size": size_k, "omega_c": round(float(rng.uniform(math.pi / 3, math.pi)), 4)}
    jpeg = {"op": "jpeg", "quality": int(rng.integers(ranges.jpeg_quality_2[0], ranges.jpeg_quality_2[1] + 1))}
    resize_first = bool(rng.random() < 0.5)
    tail = [final_resize] + ([final_sinc] if final_sinc else [])
    ops.extend(tail + [jpeg] if resize_first else [jpeg] + tail)
    return ops


# ---------------------------------------------------------------------------------------------
# kernels and operations


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """A normalised (an)isotropic Gaussian kernel rotated by `theta` radians."""
    half = size // 2
    ys, xs = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float64)
    cos, sin = math.cos(theta), math.sin(theta)
    u = cos * xs + sin * ys
    v = -sin * xs + cos * ys
    kernel = np.exp(-0.5 * ((u / max(sigma_x, 1e-3)) ** 2 + (v / max(sigma_y, 1e-3)) ** 2))
    return kernel / kernel.sum()


def sinc_kernel(size: int, omega_c: float, samples: int = 96) -> np.ndarray:
    """An ideal circular low-pass filter (cut-off `omega_c` rad/pixel) truncated to `size` x `size`.

    The inverse Fourier transform of the pass-band disk is integrated numerically, which avoids
    needing a Bessel function (no scipy).
    """
    half = size // 2
    ys, xs = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float64)
    w = (np.arange(samples) + 0.5) / samples * 2 * math.pi - math.pi
    wy, wx = np.meshgrid(w, w, indexing="ij")
    inside = wx**2 + wy**2 <= omega_c**2
    fx, fy = wx[inside], wy[inside]
    kernel = np.cos(np.outer(xs.ravel(), fx) + np.outer(ys.ravel(), fy)).sum(axis=1).reshape(size, size)
    return kernel / kernel.sum()


def _kernel_for(op: dict[str, Any]) -> np.ndarray:
    size = int(op["size"])
    if size < 1 or size % 2 == 0:
        raise DegradationError(f"blur kernel size must be odd and positive, got {size}")
    if op["kernel"] == "sinc":
        return sinc_kernel(size, float(op["omega_c"]))
    if op["kernel"] in ("iso", "aniso"):
        return gaussian_kernel(size, float(op["sigma_x"]), float(op["sigma_y"]), float(op.get("theta", 0.0)))
    raise DegradationError(f"unknown blur kernel {op['kernel']!r}; expected iso, aniso or sinc")


def filter2d(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve an HxWxC float image with a symmetric odd-sized kernel (reflected borders, via FFT)."""
    pad = kernel.shape[0] // 2
    height, width = image.shape[:2]
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    ph, pw = padded.shape[:2]
    placed = np.zeros((ph, pw), dtype=np.float32)
    placed[: kernel.shape[0], : kernel.shape[1]] = kernel
    placed = np.roll(placed, (-pad, -pad), axis=(0, 1))
    spectrum = np.fft.rfft2(padded, axes=(0, 1)) * np.fft.rfft2(placed)[:, :, None]
    out = np.fft.irfft2(spectrum, s=(ph, pw), axes=(0, 1))
    return out[pad:pad + height, pad:pad + width].astype(np.float32)


def _resize_array(image: np.ndarray, size: tuple[int, int], interpolation: str) -> np.ndarray:
    if interpolation not in _INTERPOLATIONS:
        raise DegradationError(f"unknown interpolation {interpolation!r}; expected one of {', '.join(_INTERPOLATIONS)}")
    if (image.shape[1], image.shape[0]) == tuple(size):
        return image
    method = _INTERPOLATIONS[interpolation]
    channels = [np.asarray(Image.fromarray(image[:, :, c], mode="F").resize(tuple(size), method)) for c in range(image.shape[2])]
    return np.stack(channels, axis=2)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _add_noise(image: np.ndarray, op: dict[str, Any]) -> np.ndarray:
    rng = np.random.default_rng(int(op["seed"]))
    shape = image.shape[:2] + ((1,) if op["gray"] else (image.shape[2],))
    if op["op"] == "gaussian_noise":
        noise = rng.normal(0.0, float(op["sigma"]) / 255.0, size=shape)
    else:
        # Poisson (shot) noise on 8-bit levels, scaled, as Real-ESRGAN does
        source = image.mean(axis=2, keepdims=True) if op["gray"] else image
        levels = 256.0
        quantised = np.round(np.clip(source, 0, 1) * 255.0) / 255.0
        noise = (rng.poisson(quantised * levels) / levels - quantised) * float(op["scale"])
    return np.clip(image + noise.astype(np.float32), 0.0, 1.0)


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    if not 1 <= int(quality) <= 100:
        raise DegradationError(f"JPEG quality must be 1..100, got {quality}")
    buffer = io.BytesIO()
    Image.fromarray(_to_uint8(image)).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float32) / 255.0


def _pil_blur(image: np.ndarray, radius: float) -> np.ndarray:
    blurred = Image.fromarray(_to_uint8(image)).filter(ImageFilter.GaussianBlur(radius=float(radius)))
    return np.asarray(blurred, dtype=np.float32) / 255.0


def apply_params(hq: Image.Image, params: dict[str, Any]) -> Image.Image:
    """Replay a recorded degradation on `hq` (which must have the recorded size)."""
    if list(hq.size) != list(params.get("hq_size", [])):
        raise DegradationError(f"these parameters were drawn for a {params.get('hq_size')} image, got {list(hq.size)}")
    crop = tuple(params["crop"])
    image = np.asarray(hq.convert("RGB").crop((0, 0, *crop)), dtype=np.float32) / 255.0
    for op in params["ops"]:
        kind = op.get("op")
        if kind == "blur":
            image = np.clip(filter2d(image, _kernel_for(op)), 0.0, 1.0)
        elif kind == "resize":
            image = np.clip(_resize_array(image, tuple(op["size"]), op["interpolation"]), 0.0, 1.0)
        elif kind in ("gaussian_noise", "poisson_noise"):
            image = _add_noise(image, op)
        elif kind == "jpeg":
            image = _jpeg(image, op["quality"])
        elif kind == "pil_gaussian_blur":
            image = _pil_blur(image, op["radius"])
        else:
            raise DegradationError(f"unknown degradation op {kind!r}")
    out = Image.fromarray(_to_uint8(image))
    if list(out.size) != list(params["lq_size"]):
        raise DegradationError(f"degradation ended at {out.size}, expected {params['lq_size']}")
    return out


def degrade(hq: Image.Image, scale: int, seed: int, mode: str = "realistic",
            ranges: RealisticRanges = RealisticRanges()) -> tuple[Image.Image, dict[str, Any]]:
    """HQ PIL image -> (LQ PIL RGB image at 1/scale of the cropped HQ, the recorded parameters)."""
    if not isinstance(hq, Image.Image):
        raise DegradationError(f"degrade expects a PIL image, got {type(hq).__name__}")
    params = sample_params(hq.size, scale, seed, mode, ranges)
    return apply_params(hq, params), params
