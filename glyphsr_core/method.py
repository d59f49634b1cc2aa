"""GLYPH-SR end to end without ComfyUI: the headless method, stage by stage.

    LQ -> Text Restore (stage 1, `text_restore`) -> R -> OCR reads R (`read_words`; or typed words)
       -> scene caption (`caption_with_vlm`, or given) -> the four prompts
       -> bicubic upscale of LQ (scene hint) + R (text hint) + glyph map + beta map from the text mask
       -> the diffusers sampler (`diffusion.sampler`: TS-ControlNet, ping-pong, tiled when large)
       -> VAE decode -> colour fix toward the LQ colours (`upscale`)
       -> Text Guard: OCR the result, re-sample wrong words, else put R's letters back (`text_guard`)

The other way to readable text: any upscaler (`upscale_with_model`) with Keep Words against a
faithful reference (`keep_words_reference`, `guidance_words`; the repair is `guard.keep_words`).

One guidance source: the words read from R (or typed) drive the prompts, glyph map, mask, beta map
and the guard. Stage 1 alone is a whole result (no diffusion files needed). `python -m glyphsr_core
upscale` (`commands/upscale.py`) parses flags into these calls; the ComfyUI graphs wire the same
blocks as nodes.
"""

from __future__ import annotations

import gc
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from PIL import Image

from . import defaults
from .diffusion import SCHEDULERS
from .diffusion.sampler import DEFAULT_PINGPONG, DEFAULT_STEPS, Conditioning, PipelineInputError
from .errors import InvalidInputError
from .guard import CHANGED_WORDS
from .guard.headless import guard_upscale
from .imageops import open_image_file, pil_to_tensor, tensor_to_pil, to_pil_rgb
from .ocr import filter_words, read_text
from .restore import restore_pil
from .restore.cli_support import load_cli_restorer
from .restore.split import is_compact
from .restore.model_file import load_restorer
from .restore.progress import TileProgressLog, announce
from .sampling.colorfix import color_fix as apply_color_fix
from .sampling.fusion import beta_map_from_mask, check_beta
from .sampling.pingpong import PingPong
from .text.glyphs import render_glyph_map, render_text_mask
from .text.prompts import build_prompts
from .text.text_input import parse_text_input
from .tiling.context import plan_tiles
from .tiling.prompts import build_tile_prompts
from .tiling.sampler import SampleTiling, auto_tiling
from .tscontrolnet.bundle import hint_image, takes_glyph
from .types import OcrResult
from .vlm import load_captioner

logger = logging.getLogger(__name__)

COLOR_FIXES = ("wavelet", "adain", "none")


@dataclass
class UpscaleResult:
    image: Any  # PIL.Image
    ocr: OcrResult
    caption: str
    prompts: Any  # glyphsr_core.text.prompts.PromptSet
    schedule: str  # e.g. "STST...TT"
    size: tuple[int, int]
    info: dict[str, Any] = field(default_factory=dict)


def _check_number(name: str, value: float, low: float, high: float = math.inf, low_open: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and value <= high
    if not ok:
        span = f"{'above' if low_open else 'at least'} {low:g}"
        span += f" and at most {high:g}" if high < math.inf else ""
        raise PipelineInputError(f"{name} must be a number {span}; got {value!r}")


def _check_count(name: str, value: Any, low: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise PipelineInputError(f"{name} must be {what}; got {value!r}")


def check_options(*, scale: float = 4, steps: int = DEFAULT_STEPS, beta: float | None = None,
                  beta_scene: float | None = None, mask_dilation: int = defaults.MASK_DILATION,
                  controlnet_scale: float = defaults.CONTROL_STRENGTH, denoise: float = defaults.DENOISE,
                  color_fix: str = defaults.COLOR_FIX, min_confidence: float = defaults.MIN_CONFIDENCE,
                  max_words: int = defaults.MAX_WORDS, scheduler: str | None = "euler") -> None:
    """Refuse a bad option before anything slow runs (OCR, a VLM, loading gigabytes of weights).

    The ping-pong settings are checked by `PingPong` itself when it is built.
    """
    _check_number("scale", scale, 0.0, low_open=True)
    _check_count("steps", steps, 1, "a whole number of at least 1")
    for name, value in (("beta", beta), ("beta_scene", beta_scene)):
        if value is not None:
            try:
                check_beta(value, name)
            except (TypeError, ValueError) as exc:
                raise PipelineInputError(str(exc)) from None
    _check_count("mask_dilation", mask_dilation, 0, "a whole number of pixels >= 0")
    _check_number("controlnet_scale (ControlNet strength)", controlnet_scale, 0.0)
    _check_number("denoise", denoise, 0.0, 1.0, low_open=True)
    if color_fix not in COLOR_FIXES:
        raise PipelineInputError(f"color_fix must be one of {', '.join(COLOR_FIXES)}; got {color_fix!r}")
    _check_number("min_confidence", min_confidence, 0.0, 1.0)
    _check_count("max_words", max_words, 0, "a whole number >= 0")
    if scheduler is not None and scheduler not in SCHEDULERS:
        raise PipelineInputError(f"scheduler must be one of {', '.join(SCHEDULERS)}; got {scheduler!r}")


# -- stage 1 and guidance ---------------------------------------------------------------------------
def text_restore(image: Image.Image, scale: float, restorer: Path | None = None, *,
                 tile: int = defaults.RESTORE_TILE, context_margin: int = defaults.RESTORE_CONTEXT_MARGIN,
                 loaded: Any = None, on_tile: Callable[[int, int], None] | None = None) -> tuple[Image.Image, Any]:
    """Stage 1: the restored image R at the output scale (x8/x2 from the x4 net; other scales resized)
    and the loaded restorer (the bundled one unless `restorer` names a file; `loaded`: one already
    loaded, so a run over many images loads it once).

    Before the work a time estimate and the output size are logged (a warning when long);
    `on_tile(done, total)` is called after each tile (default: progress lines in the log)."""
    loaded = loaded if loaded is not None else load_cli_restorer(restorer)
    net_scale = 8 if scale > 4 else (4 if scale > 2 else 2)
    restored = _restore_logged(loaded, image, net_scale, tile, context_margin, on_tile)
    target = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if restored.size != target:
        restored = restored.resize(target, Image.Resampling.LANCZOS)
    logger.info("Text Restore (%s): %dx%d -> %dx%d", loaded.path.name, image.width, image.height, *restored.size)
    return restored, loaded


def _restore_logged(loaded: Any, image: Image.Image, scale: int, tile: int, context_margin: int,
                    on_tile: Callable[[int, int], None] | None, raw: bool = False) -> Image.Image:
    """`restore_pil` after an estimate, with progress lines unless the caller brings its own hook
    (`raw`: the net's own output, as for a user's upscaler)."""
    param = next(loaded.model.parameters(), None)
    device = (str(param.device) if param is not None else "cpu") if is_compact(loaded.model) else None
    announce(image.width, image.height, scale, loaded.scale, device)  # time estimate: measured for the bundled net
    if on_tile is None:
        on_tile = TileProgressLog()
        pre = max(1, scale // loaded.scale)
        on_tile.begin(len(plan_tiles(image.height * pre, image.width * pre, tile, context_margin)))
    return restore_pil(loaded.model, loaded.scale, image, scale, tile=tile, context_margin=context_margin,
                       on_tile=on_tile, raw=raw)


def read_words(image: Any, min_confidence: float = defaults.MIN_CONFIDENCE,
               word_filter: str = "standard", group_letters: bool = True) -> tuple[OcrResult, tuple]:
    """OCR `image` (letters of one printed word merged back into it unless `group_letters` is False)
    and filter the tokens that are not words: (words kept, dropped tokens with reasons)."""
    return filter_words(read_text(to_pil_rgb(image), min_confidence=min_confidence, group_letters=group_letters),
                        word_filter)


def caption_with_vlm(folder: Path, image: Any, device: str, precision: str) -> str:
    """Caption on the chosen device and precision, then free the VLM before the diffusion models load."""
    captioner = load_captioner(folder, dtype=precision, device=device)
    captioner.model.to(device)
    caption = captioner.caption([to_pil_rgb(image)])[0]
    del captioner
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
    logger.info("caption: %s", caption)
    return caption


def torch_settings(device: str | None, precision: str = "auto") -> tuple[str, torch.dtype]:
    """(device, dtype): CUDA when available; 'auto' precision is fp16 on CUDA, fp32 on CPU."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    precision = precision if precision != "auto" else ("fp16" if device.startswith("cuda") else "fp32")
    return device, {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


# -- stages 2-6: prompts, TS-ControlNet sampling, colour fix -----------------------------------------
def upscale(pipeline: Any, image: Any, *, scale: float = 4, caption: str = "", captioner: Any = None,
            text: OcrResult | None = None, ocr_image: Any = None, min_confidence: float = defaults.MIN_CONFIDENCE,
            word_filter: str = "standard", max_words: int = defaults.MAX_WORDS, steps: int = DEFAULT_STEPS,
            pingpong: PingPong = DEFAULT_PINGPONG, seed: int = 0, scheduler: str = "euler",
            beta: float | None = None, beta_scene: float | None = None,
            mask_dilation: int = defaults.MASK_DILATION, controlnet_scale: float = defaults.CONTROL_STRENGTH,
            color_fix: str = defaults.COLOR_FIX, denoise: float = defaults.DENOISE, restored: Any = None,
            callback: Callable[[int, int, str], None] | None = None, sample_tile: int | None = None,
            sample_blend_overlap: int = defaults.SAMPLE_BLEND_OVERLAP,
            sample_tile_batch: int = defaults.SAMPLE_TILE_BATCH) -> UpscaleResult:
    """Upscale one image the GLYPH-SR way with a `GlyphSRPipeline` (see the module docstring).

    `text` replaces OCR (user-corrected words); otherwise OCR reads `ocr_image` (the Text Restore
    result R, any size) or, without it, the LQ input; OCR words go through `word_filter`
    (glyphsr_core.ocr.hygiene; the dropped ones are in `info["ocr_dropped"]`); `captioner`
    (glyphsr_core.vlm) writes the caption when `caption` is empty. `beta_scene` set -> mask fusion:
    beta inside the dilated text mask, `beta_scene` outside. `color_fix` is "wavelet", "adain" or
    "none". `restored` (the stage-1 restored image R, any size; resized to the working size) is the
    hint of text branches with text_hint 'restored' (the shared branch). `sample_tile` samples in
    tiles of that many pixels (0: never; None: automatically above twice the base's native size)
    blended across `sample_blend_overlap` pixels, each tile with its own text prompt (the words inside
    it, located in the tile).
    """
    check_options(scale=scale, steps=steps, beta=beta, beta_scene=beta_scene, mask_dilation=mask_dilation,
                  controlnet_scale=controlnet_scale, denoise=denoise, color_fix=color_fix,
                  min_confidence=min_confidence, max_words=max_words, scheduler=scheduler)
    lq = to_pil_rgb(image)
    target, work = _sizes(lq, scale, pipeline.vae_scale_factor)
    restored_work = _restored_hint(pipeline, restored, work)
    dropped: tuple = ()
    if text is None:
        text, dropped = read_words(lq if ocr_image is None else ocr_image, min_confidence, word_filter)
    if not caption and captioner is not None:
        caption = captioner.caption([lq])[0]
    prompts = build_prompts(caption, text, max_words=max_words)
    logger.info("%s", prompts.summary())
    tiling, tile_text, tile_words = _sample_tiling(pipeline, work, sample_tile, sample_blend_overlap,
                                                   sample_tile_batch, caption, text, max_words)
    glyph, beta_map = _text_branch_inputs(pipeline, text, work, beta, beta_scene, mask_dilation)
    with _vae_tiling(pipeline, tiling is not None):
        out = pipeline.sample(pil_to_tensor(lq.resize(work, Image.Resampling.BICUBIC)),
                              pipeline.encode(prompts.scene_positive, prompts.scene_negative),
                              pipeline.encode(prompts.text_positive, prompts.text_negative), glyph=glyph,
                              restored=restored_work, beta=beta if pipeline.text_controlnet else 0.0,
                              beta_map=beta_map, steps=steps, pingpong=pingpong, scheduler=scheduler,
                              generator=torch.Generator(device="cpu").manual_seed(int(seed)),
                              controlnet_scale=controlnet_scale, denoise=denoise, callback=callback, tiling=tiling,
                              tile_text=tile_text)
    if color_fix != "none":
        out = apply_color_fix(out.cpu(), pil_to_tensor(lq), method=color_fix)
    result = tensor_to_pil(out[0])
    if result.size != target:
        result = result.resize(target, Image.Resampling.BICUBIC)
    return UpscaleResult(image=result, ocr=text, caption=caption, prompts=prompts,
                         schedule=pingpong.branches(max(1, min(int(steps * denoise), steps))), size=target,
                         info={"work_size": work, "words_dropped": list(prompts.words_dropped),
                               "ocr_dropped": [d.to_dict() for d in dropped], "tiles": tile_words})


def _sizes(lq: Image.Image, scale: float, factor: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(the output size, the working size: the output size rounded down to the VAE factor)."""
    target = (max(1, round(lq.width * scale)), max(1, round(lq.height * scale)))
    work = (max(factor, target[0] // factor * factor), max(factor, target[1] // factor * factor))
    return target, work


def _restored_hint(pipeline: Any, restored: Any, work: tuple[int, int]) -> torch.Tensor | None:
    """R at the working size (the hint of a text branch that sees the restored image), or None."""
    if restored is not None:
        restored = to_pil_rgb(restored)
        return pil_to_tensor(restored.resize(work, Image.Resampling.BICUBIC) if restored.size != work else restored)
    if pipeline.text_controlnet is not None and hint_image(pipeline.text_hint) == "restored":
        raise PipelineInputError(f"this text branch (text_hint {pipeline.text_hint!r}) sees the restored image: "
                                 f"pass the stage-1 restored image (--restored)")
    return None


def _text_branch_inputs(pipeline: Any, text: OcrResult, work: tuple[int, int], beta: float | None,
                        beta_scene: float | None, mask_dilation: int) -> tuple:
    """(the glyph map for a text branch that takes one, the beta map for mask fusion), each or None."""
    if pipeline.text_controlnet is None:
        if beta is not None or beta_scene is not None:
            logger.warning("no text branch is loaded (no TS-ControlNet bundle), so beta / beta_scene are ignored")
        return None, None
    glyph = pil_to_tensor(render_glyph_map(text, *work)) if takes_glyph(pipeline.text_hint) else None
    beta_map = None
    if beta_scene is not None:
        mask = pil_to_tensor(render_text_mask(text, *work))
        beta_map = beta_map_from_mask(mask, pipeline.beta if beta is None else beta, beta_scene, mask_dilation)
    return glyph, beta_map


class _vae_tiling:
    """A large image: the VAE encodes and decodes in tiles too (diffusers' tiled VAE), then stops."""

    def __init__(self, pipeline: Any, on: bool) -> None:
        self.vae = pipeline.base.vae
        self.on = on and hasattr(self.vae, "enable_tiling")

    def __enter__(self) -> None:
        if self.on:
            self.vae.enable_tiling()

    def __exit__(self, *exc: Any) -> None:
        if self.on:
            self.vae.disable_tiling()


def _sample_tiling(pipeline: Any, work: tuple[int, int], sample_tile: int | None, blend_overlap: int, batch: int,
                   caption: str, text: OcrResult | None, max_words: int) -> tuple:
    """(SampleTiling or None, per-tile text Conditionings or None, per-tile words for the report)."""
    if sample_tile is None:
        native = 1024 if pipeline.base.family == "sdxl" else 512
        tiling = auto_tiling(work[0], work[1], native, blend_overlap, batch)
    elif sample_tile == 0:
        tiling = None
    else:
        tiling = SampleTiling(int(sample_tile), int(blend_overlap), int(batch))
    if tiling is None:
        return None, None, None
    factor = pipeline.vae_scale_factor
    grid = tiling.grid(work[1] // factor, work[0] // factor, factor)
    sets = build_tile_prompts(caption, text, grid.boxes(), max_words=max_words)
    tile_text: list[Conditioning] = [pipeline.encode(p.text_positive, p.text_negative) for p in sets]
    words = [{"tile": [t.row, t.col], "box_px": [t.x0 * factor, t.y0 * factor, t.x1 * factor, t.y1 * factor],
              "words": list(p.words_used)} for t, p in zip(grid.tiles, sets)]
    return tiling, tile_text, words


# -- stage 7: the Text Guard -------------------------------------------------------------------------
def text_guard(pipeline: Any, lq: Any, result: UpscaleResult, *, rounds: int, steps: int, cfg: float, seed: int,
               denoise: float = defaults.GUARD_DENOISE, dilation: int = defaults.GUARD_DILATION,
               min_confidence: float = defaults.MIN_CONFIDENCE, color_fix: str = defaults.COLOR_FIX,
               fallback: Any = None, mode: str = CHANGED_WORDS) -> Any:
    """Text Guard (Keep Words with re-sampling) after the colour fix; replaces `result.image` and
    returns its report (None when `rounds` < 0: off). `fallback` is the stage-1 restored image R
    (PIL); None uses the bicubic upscale of the LQ."""
    if rounds < 0:
        return None
    result.image, guarded = guard_upscale(pipeline, lq, result, rounds=rounds, steps=steps, cfg=cfg, seed=seed,
                                          denoise=denoise, dilation=dilation, min_confidence=min_confidence,
                                          color_fix=color_fix, fallback=fallback, mode=mode)
    return guarded.report


# ---------------------------------------------------------------------------------- the other way: Keep Words
def upscale_with_model(path: Path, image: Image.Image, scale: float, *, tile: int = defaults.RESTORE_TILE,
                       context_margin: int = defaults.RESTORE_CONTEXT_MARGIN, loaded: Any = None
                       ) -> tuple[Image.Image, Any]:
    """Any upscaler spandrel reads, run tiled at its own scale as it is (a compact file gets neither Text
    Restore's smooth-area blend nor its grid removal: its look is the point), then resized to `scale` if
    that differs (`loaded`: the model already loaded from `path`)."""
    whole = round(scale)
    if whole != scale or whole < 1:
        raise InvalidInputError(f"--scale must be a whole number with an upscale model, got {scale}")
    loaded = loaded if loaded is not None else load_restorer(path)
    upscaled = _restore_logged(loaded, to_pil_rgb(image), loaded.scale, tile, context_margin, None, raw=True)
    target = (image.width * whole, image.height * whole)
    if upscaled.size != target:
        upscaled = upscaled.resize(target, Image.Resampling.LANCZOS)
    logger.info("upscaler %s (%s, x%d): %dx%d -> %dx%d", loaded.path.name, loaded.architecture, loaded.scale,
                image.width, image.height, *upscaled.size)
    return upscaled, loaded


def keep_words_reference(lq: Image.Image, size: tuple[int, int], source: str, *, restorer: Path | None = None,
                         tile: int = defaults.RESTORE_TILE,
                         context_margin: int = defaults.RESTORE_CONTEXT_MARGIN,
                         loaded: Any = None) -> tuple[Image.Image, str]:
    """The faithful reference whose words Keep Words keeps, and a phrase saying what it is: "restore"
    (Text Restore of the LQ, resized to `size`; `loaded`: the restorer already loaded), "lq" (the LQ;
    Keep Words enlarges it) or an image file."""
    if source == "lq":
        return lq, "the LQ, enlarged with bicubic"
    if source != "restore":
        return open_image_file(Path(source)), f"the image {source}"
    restored, loaded = text_restore(to_pil_rgb(lq), size[0] / lq.width, restorer, tile=tile,
                                    context_margin=context_margin, loaded=loaded)
    if restored.size != tuple(size):
        restored = restored.resize(tuple(size), Image.Resampling.LANCZOS)
    return restored, f"Text Restore ({loaded.path.name}) of the LQ"


def guidance_words(reference: Image.Image, text: str | None = None, *,
                   min_confidence: float = defaults.MIN_CONFIDENCE, word_filter: str = "standard") -> OcrResult:
    """The words to keep: typed (`text`: plain lines or JSON, or a file holding them), else OCR of the reference."""
    if text:
        path = Path(text)
        return parse_text_input(path.read_text(encoding="utf-8") if path.is_file() else text,
                                reference.width, reference.height)[0]
    return read_words(reference, min_confidence, word_filter)[0]
