"""Text Guard node: words the upscale got wrong are re-sampled, then painted from the fallback."""

from __future__ import annotations

import comfy.sample
import comfy.samplers
import torch

from ..glyphsr_core.guard import COLOR_METHODS, ResampleRound, format_guard_report, guard_batch, ocr_reader
from ..glyphsr_core.imageops import check_comfy_images
from .ocr import TEXT_TYPE
from .runtime import CATEGORY, check_interrupt, output_device, progress_bar

#: seeds of batch item i start at seed + i * SEED_STRIDE, so items never share a re-sample's noise
SEED_STRIDE = 1000


def _rgb(images: torch.Tensor, name: str) -> torch.Tensor:
    """IMAGE [B, H, W, C] -> [B, 3, H, W] float32."""
    images = check_comfy_images(images, name)
    images = images[..., :1].repeat(1, 1, 1, 3) if images.shape[-1] < 3 else images[..., :3]
    return images.movedim(-1, 1).float().cpu()


def _comfy_resampler(model, vae, positive, negative, seed: int, steps: int, cfg: float, sampler_name: str,
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


class TextGuard:
    DESCRIPTION = (
        "Closes the loop on invented or changed letters: reads the result (same OCR as 'GlyphSR OCR Extract'), "
        "pairs its words with the guidance words by place, and for every word changed, lost or invented "
        "re-samples that word's box (with model, vae and the text prompt pair connected: a new seed and a "
        "stronger text CFG each round), then, if still wrong, pastes the fallback's pixels (the Text Restore "
        "result) into the box, feathered and colour matched. Pixels outside the repaired boxes stay identical; "
        "a result that would read worse is not used. Without model inputs it only composites."
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": ("IMAGE", {"tooltip": "The upscaled result to guard (after Color Fix)."}),
                "fallback": ("IMAGE", {"tooltip": "Whose letters to paste where the result stays wrong: the "
                                                  "'GlyphSR Text Restore' output (resized to the image if needed)."}),
                "text": (TEXT_TYPE, {"tooltip": "The guidance words (OCR of the restored image, or typed)."}),
                "rounds": ("INT", {"default": 2, "min": 0, "max": 10, "tooltip": (
                    "Re-sample rounds per wrong word before pasting the fallback (needs model, vae, text_positive "
                    "and text_negative; 0 = paste at once).")}),
                "min_confidence": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01,
                                             "tooltip": "Words read from the result with lower confidence are ignored."}),
                "dilation": ("INT", {"default": 8, "min": 0, "max": 128, "tooltip": (
                    "How far (pixels) a repair reaches beyond the word box; the edge fades over its outer half.")}),
            },
            "optional": {
                "model": ("MODEL", {"tooltip": "The diffusion model for re-sampling."}),
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
                    "How the pasted fallback takes the result's colours ('none': raw fallback pixels).")}),
            },
        }

    RETURN_TYPES = ("IMAGE", "STRING", "MASK")
    RETURN_NAMES = ("image", "report", "repaired_mask")
    OUTPUT_TOOLTIPS = (
        "The result with wrong words repaired; identical to the input outside the repaired boxes.",
        "Word F1 before and after, and for each wrong word what was done (re-sampled, pasted) and what it reads now.",
        "How much of each pixel was rewritten (0 = untouched).",
    )
    FUNCTION = "guard"
    CATEGORY = CATEGORY

    def guard(self, image: torch.Tensor, fallback: torch.Tensor, text: list, rounds: int, min_confidence: float,
              dilation: int, model=None, vae=None, text_positive=None, text_negative=None, seed: int = 0,
              steps: int = 20, cfg: float = 7.0, sampler_name: str = "euler", scheduler: str | None = None,
              denoise: float = 0.75, color_match: str = "wavelet"):
        images, fallbacks = _rgb(image, "image"), _rgb(fallback, "fallback")
        if not isinstance(text, list) or not text:
            raise ValueError("'text' must be a GLYPHSR_TEXT with at least one result (connect an OCR node)")
        sampling = {"model": model, "vae": vae, "text_positive": text_positive, "text_negative": text_negative}
        connected = [name for name, value in sampling.items() if value is not None]
        if connected and len(connected) < len(sampling):
            missing = [name for name in sampling if name not in connected]
            raise ValueError(f"re-sampling needs {', '.join(sampling)}; {', '.join(missing)} not connected "
                             "(connect all four, or none of them to only paste the fallback)")
        resample = bool(connected) and rounds > 0
        scheduler = scheduler or comfy.samplers.KSampler.SCHEDULERS[0]
        steps_per_image = 1 + (rounds if resample else 0) + 3  # read, rounds, up to three pastes
        pbar = progress_bar(len(images) * steps_per_image)

        def on_step(name: str) -> None:
            pbar.update(1)
            check_interrupt()

        def resampler_for(index: int):
            if not resample:
                return None
            return _comfy_resampler(model, vae, text_positive, text_negative, seed + SEED_STRIDE * index, steps, cfg,
                                    sampler_name, scheduler, denoise)

        check_interrupt()
        results = guard_batch(images, fallbacks, text, reader=ocr_reader(min_confidence), resampler_for=resampler_for,
                              rounds=rounds if resample else 0, dilation=dilation, color_method=color_match,
                              align=_align(vae) if resample else 8, on_step=on_step)
        pbar.update_absolute(len(images) * steps_per_image)
        out = torch.stack([r.image for r in results]).movedim(1, -1)
        masks = torch.stack([r.mask for r in results])
        report = format_guard_report([r.report for r in results])
        return (out.to(output_device()), report, masks.to(output_device()))


NODE_CLASS_MAPPINGS = {"GlyphSR_TextGuard": TextGuard}
NODE_DISPLAY_NAME_MAPPINGS = {"GlyphSR_TextGuard": "GlyphSR Text Guard"}
