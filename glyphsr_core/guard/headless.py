"""Keep Words and the Text Guard without ComfyUI: on PIL images, and after `upscale`'s diffusion.

`keep_words_pil` repairs any upscaler's output against a reference (`upscale --upscaler`, the
`keep-words` command). After the diffusion stages, `guard_upscale` re-samples with the pipeline first.

`upscale` adds the `--guard*` flags (defaults in glyphsr_core.defaults) and, after the colour fix,
calls `guard_upscale`. Re-sampling runs the
pipeline on the crop around the wrong words: the upscaled LQ crop is the ControlNet hint and the
img2img start (`--guard-denoise`), the text prompt pair guides every step at `--cfg` times the
round's text weight, with seed `--seed` + round + 1; the crop is colour fixed toward the LQ like
the main result. The fallback is the stage-1 restored image when one is given, else the bicubic
upscale of the LQ image.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..defaults import GUARD_DENOISE as DEFAULT_DENOISE
from ..imageops import to_pil_rgb
from ..sampling.colorfix import color_fix as fix
from ..sampling.pingpong import PingPong
from .core import GuardResult, ResampleRound, ocr_reader
from .keep_words import CHANGED_WORDS, guard_image, keep_words


def _to_tensor(image: Any) -> torch.Tensor:
    import numpy as np

    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def _to_pil(image: torch.Tensor) -> Any:
    from PIL import Image

    return Image.fromarray((image.clamp(0, 1).permute(1, 2, 0).numpy() * 255.0).round().astype("uint8"))


def _crop(image: torch.Tensor, round_: ResampleRound, height: int, width: int) -> torch.Tensor:
    """The round's window of `image` [1, C, H, W], padded (replicate) to the crop's size."""
    x0, y0, x1, y1 = round_.window
    part = image[:, :, y0:y1, x0:x1]
    return F.pad(part, (0, width - part.shape[-1], 0, height - part.shape[-2]), mode="replicate")


def pipeline_resampler(pipeline: Any, lq_upscaled: torch.Tensor, text_positive: str, text_negative: str, *,
                       steps: int, cfg: float, seed: int, denoise: float, glyph: torch.Tensor | None = None,
                       restored: torch.Tensor | None = None, color_fix: str = "wavelet"):
    """A core `Resampler` on a `GlyphSRPipeline`; `lq_upscaled` [1, 3, H, W] is at the output's size,
    `restored` (same size) the Text Restore result a text branch made for it sees."""
    import math

    cond = pipeline.encode(text_positive, text_negative)
    steps = max(steps, math.ceil(1.0 / denoise))  # a round always runs at least one denoising step

    def resample(crop: torch.Tensor, mask: torch.Tensor, round_: ResampleRound) -> torch.Tensor:
        height, width = crop.shape[-2:]
        control = _crop(lq_upscaled, round_, height, width)
        weight = cfg * round_.text_weight
        plan = PingPong(schedule="pattern", pattern="T", cfg=weight, text_cfg=weight)
        generator = torch.Generator(device="cpu").manual_seed(int(seed) + round_.seed_offset)
        beta = None if pipeline.text_controlnet is not None else 0.0
        out = pipeline.sample(control, cond, cond, glyph=None if glyph is None else _crop(glyph, round_, height, width),
                              restored=None if restored is None else _crop(restored, round_, height, width),
                              beta=beta, steps=steps, pingpong=plan, generator=generator, denoise=denoise).cpu()
        return out if color_fix == "none" else fix(out, control.cpu(), method=color_fix)

    return resample


def guard_upscale(pipeline: Any, lq: Any, result: Any, *, rounds: int, steps: int, cfg: float, seed: int,
                  denoise: float = DEFAULT_DENOISE, dilation: int = 8, min_confidence: float = 0.5,
                  color_fix: str = "wavelet", fallback: Any = None, mode: str = CHANGED_WORDS) -> tuple[Any, GuardResult]:
    """Guard `result` (an `UpscaleResult`) against its own guidance words; returns the guarded PIL
    image and the `GuardResult` (report, and the mask of rewritten pixels).

    `fallback` is a PIL image (the stage-1 restore); None uses the bicubic upscale of `lq`.
    """
    from PIL import Image

    image = _to_tensor(result.image)
    height, width = image.shape[-2:]
    lq_up = to_pil_rgb(lq).resize((width, height), Image.Resampling.BICUBIC)
    fallback_image = _to_tensor(lq_up if fallback is None else fallback)
    resampler = None
    if rounds > 0:
        glyph = None
        if pipeline.text_controlnet is not None and pipeline.text_hint == "lq+glyph":
            from ..text.glyphs import render_glyph_map

            glyph = _to_tensor(render_glyph_map(result.ocr, width, height))[:1][None]
        resampler = pipeline_resampler(pipeline, _to_tensor(lq_up)[None], result.prompts.text_positive,
                                       result.prompts.text_negative, steps=steps, cfg=cfg, seed=seed, denoise=denoise,
                                       glyph=glyph, restored=fallback_image[None] if fallback is not None else None,
                                       color_fix=color_fix)
    guarded = guard_image(image, fallback_image, result.ocr, reader=ocr_reader(min_confidence), resampler=resampler,
                          rounds=max(0, rounds), dilation=dilation, align=pipeline.vae_scale_factor,
                          color_method=color_fix, mode=mode)
    out = _to_pil(guarded.image)
    # count what changed in the 8-bit image that is saved (a float change can round back to the same value)
    guarded.report.changed_pixels = int((_to_tensor(out) != image).any(dim=0).sum())
    return out, guarded


def keep_words_pil(upscaled: Any, reference: Any, guidance: Any, *, mode: str = CHANGED_WORDS, dilation: int = 8,
                   min_confidence: float = 0.5, color_fix: str = "wavelet") -> tuple[Any, GuardResult]:
    """`keep_words` on PIL images: the repaired image keeps the upscaled image's mode (grey stays
    grey, alpha passes through untouched); the reference may be any size of the same picture."""
    image = _to_tensor(upscaled)
    result = keep_words(image, _to_tensor(reference), guidance, reader=ocr_reader(min_confidence), mode=mode,
                        dilation=dilation, color_method=color_fix)
    out = _to_pil(result.image)
    if upscaled.mode in ("L", "LA"):
        out = out.convert("L")
    if upscaled.mode in ("RGBA", "LA"):
        out = out.convert("RGBA" if upscaled.mode == "RGBA" else "LA")
        out.putalpha(upscaled.getchannel("A"))
    # count what changed in the 8-bit image that is saved (a float change can round back to the same value)
    result.report.changed_pixels = int((_to_tensor(out) != image).any(dim=0).sum())
    return out, result

