"""Text Fidelity Check node: did the upscale keep the words the input showed?"""

from __future__ import annotations

import torch

from ..glyphsr_core.errors import pair_batches
from ..glyphsr_core.text.fidelity import (DEFAULT_MAX_TEXT_DISTANCE, DEFAULT_MIN_OVERLAP, FidelityResult, compare_words,
                                     format_report)
from ..glyphsr_core.text.glyphs import render_text_mask
from ..glyphsr_core.imageops import comfy_to_pil, masks_to_comfy
from ..glyphsr_core.text.metrics import WordCounts
from ..glyphsr_core.ocr import read_text
from .ocr import TEXT_TYPE, ocr_inputs
from .runtime import CATEGORY, check_interrupt, output_device, progress_bar


class TextFidelity:
    DESCRIPTION = (
        "Reads the words of the upscaled image (same OCR as 'GlyphSR OCR Extract') and compares them with the "
        "guidance words: word F1, a report of each word (kept / changed to X / missing / invented) and a mask "
        "of the places whose words changed. Without 'text', the words of 'input_image' are the guidance, so "
        "any upscaler's output can be checked. Words are compared in lower case without punctuation. Batches: "
        "guidance i checks image i, one guidance checks every image; each image is read once and gets one mask."
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": ("IMAGE", {"tooltip": "The upscaled output to check."}),
                **ocr_inputs("Words read from the output with lower confidence are ignored.",
                             "Enlarge before OCR ('auto' enlarges images under 1024 px)."),
                "min_overlap": ("FLOAT", {"default": DEFAULT_MIN_OVERLAP, "min": 0.01, "max": 1.0, "step": 0.01,
                                          "tooltip": "A guidance word and an output word are the same place when "
                                                     "their boxes overlap this much (intersection over union)."}),
                "mask_dilation": ("INT", {"default": 4, "min": 0, "max": 256, "step": 1,
                                          "tooltip": "Grow the changed-words mask by this many pixels."}),
            },
            "optional": {
                "text": (TEXT_TYPE, {"tooltip": "The guidance words (from 'GlyphSR OCR Extract' or "
                                                "'GlyphSR Text From String')."}),
                "input_image": ("IMAGE", {"tooltip": "The image before upscaling; its words are the guidance "
                                                     "when 'text' is not connected."}),
            },
        }

    RETURN_TYPES = ("FLOAT", "STRING", "MASK")
    RETURN_NAMES = ("f1", "report", "changed_mask")
    OUTPUT_TOOLTIPS = (
        "Word F1 of the output against the guidance over the whole batch (1.0 = every word kept, nothing invented).",
        "Each guidance word: kept, changed to X, missing; each extra word read from the output: invented.",
        "Regions of changed, missing and invented words at the output's size.",
    )
    FUNCTION = "check"
    CATEGORY = CATEGORY

    def check(self, image: torch.Tensor, min_confidence: float, ocr_scale: str, min_overlap: float,
              mask_dilation: int, text: list | None = None, input_image: torch.Tensor | None = None):
        outputs = comfy_to_pil(image, "image")
        if text is None and input_image is None:
            raise ValueError("connect 'text' (the guidance words, e.g. from 'GlyphSR OCR Extract') or "
                             "'input_image' (the image before upscaling) to compare the output with")
        if text is not None and (not isinstance(text, list) or not text):
            raise ValueError("'text' must be a GLYPHSR_TEXT with at least one result (connect an OCR node)")
        guidance_name = "text" if text is not None else "input_image"
        inputs = comfy_to_pil(input_image, "input_image") if text is None else []
        # one guidance may check a batch of outputs; several guidances for one output would read it several
        # times and give several masks for one image, so that is refused before any OCR runs
        pair_batches(guidance_name, text if text is not None else inputs, "image", outputs, one_to_many=("a",))
        pbar = progress_bar(len(outputs) + len(inputs))
        if text is None:
            text = []
            for pil in inputs:
                check_interrupt()
                text.append(read_text(pil, min_confidence=min_confidence, ocr_scale=ocr_scale))
                pbar.update(1)
        results: list[FidelityResult] = []
        masks = []
        for guidance, pil in pair_batches(guidance_name, text, "image", outputs, one_to_many=("a",)):
            check_interrupt()
            found = read_text(pil, min_confidence=min_confidence, ocr_scale=ocr_scale)
            result = compare_words(guidance, found, min_overlap=min_overlap, max_text_distance=DEFAULT_MAX_TEXT_DISTANCE)
            results.append(result)
            masks.append(render_text_mask(result.changed_regions(), pil.width, pil.height, mask_dilation))
            pbar.update(1)
        total = sum((r.counts for r in results), WordCounts())
        return (float(total.f1), format_report(results), masks_to_comfy(masks).to(output_device()))


NODE_CLASS_MAPPINGS = {"GlyphSR_TextFidelity": TextFidelity}
NODE_DISPLAY_NAME_MAPPINGS = {"GlyphSR_TextFidelity": "GlyphSR Text Fidelity Check"}
