"""Text Guard node: Keep Words under its first name, kept so saved workflows load and run unchanged."""

from __future__ import annotations

import torch

from ..glyphsr_core.guard import CHANGED_WORDS
from .keep_words import run_keep_words, sampling_inputs
from .ocr import TEXT_TYPE
from .runtime import CATEGORY


class TextGuard:
    #: hidden from the node search; saved workflows that use it keep loading and running unchanged
    DEPRECATED = True
    DESCRIPTION = (
        "'GlyphSR Keep Words' under its first name (same mechanism; 'fallback' is its 'reference'). "
        "Closes the loop on invented or changed letters: reads the result (same OCR as 'GlyphSR OCR Extract'), "
        "pairs its words with the guidance words by place, and for every word changed, lost or invented "
        "re-samples that word's box (with model, vae and the text prompt pair connected: a new seed and a "
        "stronger text CFG each round), then, if still wrong, repairs it from the fallback (the Text Restore "
        "result): its letters under the result's fine detail, sharpened, or as they are, feathered and colour "
        "matched. Pixels outside the repaired boxes stay identical; a result that would read worse is not used. "
        "Without model inputs it only repairs from the fallback."
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
            "optional": sampling_inputs(),
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
        sampling = {"model": model, "vae": vae, "text_positive": text_positive, "text_negative": text_negative}
        return run_keep_words(image, fallback, text, reference_name="fallback", mode=CHANGED_WORDS, rounds=rounds,
                              min_confidence=min_confidence, dilation=dilation, sampling=sampling, seed=seed,
                              steps=steps, cfg=cfg, sampler_name=sampler_name, scheduler=scheduler, denoise=denoise,
                              color_match=color_match)


NODE_CLASS_MAPPINGS = {"GlyphSR_TextGuard": TextGuard}
NODE_DISPLAY_NAME_MAPPINGS = {"GlyphSR_TextGuard": "GlyphSR Text Guard"}
