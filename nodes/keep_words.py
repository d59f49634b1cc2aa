"""Keep Words node: any upscaler's look, the words of a faithful upscale (see glyphsr_core.guard)."""

from __future__ import annotations

import comfy.sample
import comfy.samplers
import torch

from ..glyphsr_core.guard import (COLOR_METHODS, KEEP_MODES, ResampleRound, format_guard_report, keep_words_batch,
                                  ocr_reader)
from ..glyphsr_core.imageops import join_channels, split_channels
from .ocr import TEXT_TYPE
from .runtime import CATEGORY, check_interrupt, output_device, progress_bar

#: seeds of batch item i start at seed + i * SEED_STRIDE, so items never share a re-sample's noise
SEED_STRIDE = 1000
#: progress steps per image beyond the re-sample rounds: the first reading and two per rung of one
#: climb (a second climb, when one is needed, runs inside the last steps; the bar is filled at the end)
LADDER_PASSES = 1 + 2 * 5
SAMPLING_INPUTS = ("model", "vae", "text_positive", "text_negative")


def comfy_resampler(model, vae, positive, negative, seed: int, steps: int, cfg: float, sampler_name: str,
                    scheduler: str, denoise: float):
    """A core `Resampler` that inpaints the masked crop with ComfyUI's sampling (as KSampler with a
    noise mask does), guided by the text prompt pair at `cfg` times the round's text weight."""

    def resample(crop: torch.Tensor, mask: torch.Tensor, round_: ResampleRound) -> torch.Tensor:
        check_interrupt()
        latent = vae.encode(crop.movedim(1, -1))
        noise = comfy.sample.prepare_noise(latent, seed + round_.seed_offset)
        guider = comfy.samplers.CFGGuider(model)
        guider.set_conds(positive, negative)
        guider.set_cfg(cfg * round_.text_weight)
        ksampler = comfy.samplers.KSampler(model, steps=steps, device=model.load_device, sampler=sampler_name,
                                           scheduler=scheduler, denoise=denoise, model_options=model.model_options)
        samples = guider.sample(noise, latent, comfy.samplers.sampler_object(ksampler.sampler), ksampler.sigmas,
                                denoise_mask=mask.reshape(-1, 1, *mask.shape[-2:]), callback=None,
                                disable_pbar=True, seed=seed + round_.seed_offset)
        decoded = vae.decode(samples)
        return decoded[..., :3].movedim(-1, 1).float().cpu()[..., : crop.shape[-2], : crop.shape[-1]]

    return resample


def _align(vae) -> int:
    ratio = getattr(vae, "downscale_ratio", 8)
    return ratio if isinstance(ratio, int) and ratio > 0 else 8


def sampling_notes(sampling: dict, rounds: int) -> tuple[bool, list[str]]:
    """Whether to re-sample, and what to tell the user about it; half-connected inputs are an error."""
    connected = [name for name in SAMPLING_INPUTS if sampling.get(name) is not None]
    if connected and len(connected) < len(SAMPLING_INPUTS):
        missing = [name for name in SAMPLING_INPUTS if name not in connected]
        raise ValueError(f"re-sampling needs {', '.join(SAMPLING_INPUTS)}; {', '.join(missing)} not connected "
                         "(connect all four, or none of them to repair from the reference only)")
    if rounds > 0 and not connected:
        return False, [f"rounds={rounds} has no effect: re-sampling needs model, vae, text_positive and "
                       "text_negative connected; words were repaired from the reference only"]
    return bool(connected) and rounds > 0, []


def run_keep_words(image, reference, text, *, reference_name: str, mode: str, rounds: int, min_confidence: float,
                   dilation: int, sampling: dict, seed: int, steps: int, cfg: float, sampler_name: str,
                   scheduler: str | None, denoise: float, color_match: str):
    """What Keep Words and the Text Guard share: checks, progress, Cancel, batch, report."""
    images, extra = split_channels(image, "image")
    references, _ = split_channels(reference, reference_name)
    if not isinstance(text, list) or not text:
        raise ValueError("'text' must be a GLYPHSR_TEXT with at least one result (connect an OCR node)")
    resample, notes = sampling_notes(sampling, rounds)
    scheduler = scheduler or comfy.samplers.KSampler.SCHEDULERS[0]
    steps_per_image = (rounds if resample else 0) + LADDER_PASSES
    pbar = progress_bar(len(images) * steps_per_image)

    def on_step(name: str) -> None:
        pbar.update(1)
        check_interrupt()

    def resampler_for(index: int):
        if not resample:
            return None
        return comfy_resampler(sampling["model"], sampling["vae"], sampling["text_positive"],
                               sampling["text_negative"], seed + SEED_STRIDE * index, steps, cfg, sampler_name,
                               scheduler, denoise)

    check_interrupt()
    try:
        results = keep_words_batch(images, references, text, reader=ocr_reader(min_confidence),
                                   resampler_for=resampler_for, mode=mode, rounds=rounds if resample else 0,
                                   dilation=dilation, color_method=color_match,
                                   align=_align(sampling["vae"]) if resample else 8, on_step=on_step)
    except ValueError as error:
        raise ValueError(str(error).replace("'reference'", f"'{reference_name}'")) from None
    pbar.update_absolute(len(images) * steps_per_image)
    for result in results:
        result.report.notes[:0] = notes
    out = join_channels(torch.stack([r.image for r in results]), image, extra)
    masks = torch.stack([r.mask for r in results])
    return (out.to(output_device()), format_guard_report([r.report for r in results]), masks.to(output_device()))


def sampling_inputs() -> dict:
    """The optional re-sampling inputs (the diffusion graphs connect them)."""
    return {
        "model": ("MODEL", {"tooltip": "The diffusion model for re-sampling (optional)."}),
        "vae": ("VAE", {"tooltip": "The VAE of that model."}),
        "text_positive": ("CONDITIONING", {"tooltip": "Text prompt (the words to restore)."}),
        "text_negative": ("CONDITIONING", {"tooltip": "Negative prompt of the text pair."}),
        "seed": ("INT", {"default": 0, "min": 0, "max": 0xffffffffffffffff, "control_after_generate": True, "tooltip": (
            "Round r of batch item i uses seed + r + 1000 * i.")}),
        "steps": ("INT", {"default": 20, "min": 1, "max": 1000}),
        "cfg": ("FLOAT", {"default": 7.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01,
                          "tooltip": "Text CFG; round r uses cfg x (1 + 0.25 r)."}),
        "sampler_name": (comfy.samplers.KSampler.SAMPLERS, {"default": "euler"}),
        "scheduler": (comfy.samplers.KSampler.SCHEDULERS,),
        "denoise": ("FLOAT", {"default": 0.75, "min": 0.01, "max": 1.0, "step": 0.01,
                              "tooltip": "How much of each word box is re-drawn."}),
        "color_match": (list(COLOR_METHODS), {"default": "wavelet", "tooltip": (
            "How the reference's pixels take the image's colours ('none': raw reference pixels).")}),
    }


class KeepWords:
    DESCRIPTION = (
        "Keeps any upscaler's look and a faithful upscale's words. Reads the upscaled image (same OCR as "
        "'GlyphSR OCR Extract'), pairs its words with the guidance words by place, and repairs every word the "
        "upscaler changed, lost or invented ('changed words'), only those of the guidance words ('guidance "
        "words'), or every word box ('all text'), with the least "
        "visible repair that reads right: the upscaler's fine detail over the reference's letters, then the "
        "reference sharpened to the upscaler's crispness, then the reference's pixels, feathered and colour "
        "matched. Each repair is read back; one that does not read right is not kept. Pixels away from the "
        "repaired words stay exactly the upscaler's. With model, vae and the text prompt pair connected (the "
        "diffusion graphs), wrong words are first re-sampled."
    )
    SEARCH_ALIASES = ["text guard", "keep text", "fix words", "upscale text", "ocr repair"]

    @classmethod
    def INPUT_TYPES(cls):
        optional = sampling_inputs()
        optional["rounds"] = ("INT", {"default": 0, "min": 0, "max": 10, "tooltip": (
            "Re-sample rounds per wrong word before the reference repairs (needs model, vae, text_positive and "
            "text_negative connected).")})
        return {
            "required": {
                "image": ("IMAGE", {"tooltip": "The upscaler's output (e.g. 'Upscale Image (using Model)'), or a "
                                               "diffusion result."}),
                "reference": ("IMAGE", {"tooltip": "The faithful upscale whose words count: 'GlyphSR Text Restore' "
                                                   "output, or the low-res input (enlarged here with bicubic)."}),
                "text": (TEXT_TYPE, {"tooltip": "The guidance words (OCR of the reference, or typed)."}),
                "mode": (list(KEEP_MODES), {"default": KEEP_MODES[0], "tooltip": (
                    "'changed words': repair only words the upscaler reads differently; 'all text': every word box; "
                    "'guidance words': as 'changed words', but words the guidance does not have (component print, "
                    "textures the OCR reads as letters) are left as drawn.")}),
                "min_confidence": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01,
                                             "tooltip": "Words read from the image with lower confidence are ignored."}),
                "dilation": ("INT", {"default": 8, "min": 0, "max": 128, "tooltip": (
                    "How far (pixels) a repair reaches beyond the word box; the edge fades over its outer half.")}),
            },
            "optional": optional,
        }

    RETURN_TYPES = ("IMAGE", "STRING", "MASK")
    RETURN_NAMES = ("image", "report", "repaired_mask")
    OUTPUT_TOOLTIPS = (
        "The image with its words kept; identical to the input away from the repaired words.",
        "Word F1 before and after, and for each repaired word how it was repaired and what it reads now.",
        "How much of each pixel was rewritten (0 = untouched).",
    )
    FUNCTION = "keep"
    CATEGORY = CATEGORY

    def keep(self, image: torch.Tensor, reference: torch.Tensor, text: list, mode: str, min_confidence: float,
             dilation: int, model=None, vae=None, text_positive=None, text_negative=None, seed: int = 0,
             steps: int = 20, cfg: float = 7.0, sampler_name: str = "euler", scheduler: str | None = None,
             denoise: float = 0.75, color_match: str = "wavelet", rounds: int = 0):
        sampling = {"model": model, "vae": vae, "text_positive": text_positive, "text_negative": text_negative}
        return run_keep_words(image, reference, text, reference_name="reference", mode=mode, rounds=rounds,
                              min_confidence=min_confidence, dilation=dilation, sampling=sampling, seed=seed,
                              steps=steps, cfg=cfg, sampler_name=sampler_name, scheduler=scheduler, denoise=denoise,
                              color_match=color_match)


NODE_CLASS_MAPPINGS = {"GlyphSR_KeepWords": KeepWords}
NODE_DISPLAY_NAME_MAPPINGS = {"GlyphSR_KeepWords": "GlyphSR Keep Words"}
