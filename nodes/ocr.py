"""OCR nodes: read the words of an image, or take them as typed by the user."""

from __future__ import annotations

import json
import logging

import torch

from ..glyphsr_core import defaults
from ..glyphsr_core.text.glyphs import render_text_mask
from ..glyphsr_core.imageops import check_comfy_images, comfy_to_pil, masks_to_comfy, pil_to_comfy
from ..glyphsr_core.ocr import DEFAULT_WORD_FILTER, OCR_SCALES, WORD_FILTERS, filter_words, read_text
from ..glyphsr_core.text.preview import draw_ocr_preview, same_size
from ..glyphsr_core.text.text_input import parse_text_input
from .runtime import CATEGORY, check_interrupt, output_device, progress_bar

logger = logging.getLogger(__name__)

TEXT_TYPE = "GLYPHSR_TEXT"


def ocr_inputs(confidence_tip: str = "Words read with lower confidence are dropped.",
               scale_tip: str = "Enlarge the image before OCR. 'auto' enlarges images under 1024 px so small text "
                                "can be read.") -> dict:
    """The OCR settings widgets, shared by every node that reads text (same names, ranges and defaults)."""
    return {
        "min_confidence": ("FLOAT", {"default": defaults.MIN_CONFIDENCE, "min": 0.0, "max": 1.0, "step": 0.01,
                                     "tooltip": confidence_tip}),
        "ocr_scale": (list(OCR_SCALES), {"default": "auto", "tooltip": scale_tip}),
    }


class OCRExtract:
    DESCRIPTION = (
        "Reads the words of each image (RapidOCR, offline): word boxes in reading order as GLYPHSR_TEXT, "
        "the same as editable JSON, a mask of the text regions and a preview with the words drawn. "
        "The word filter drops pictograms, stray symbols and one-letter misreads (listed under 'dropped' "
        "in the JSON, marked in red in the preview and listed under it). Letters of one word that OCR returned "
        "separately are merged back into the word."
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": ("IMAGE", {"tooltip": "Image or batch to read (usually the low-quality input)."}),
                **ocr_inputs(),
                "mask_dilation": ("INT", {"default": 4, "min": 0, "max": 256, "step": 1,
                                          "tooltip": "Grow the text mask by this many pixels."}),
            },
            "optional": {
                "word_filter": (list(WORD_FILTERS), {
                    "default": DEFAULT_WORD_FILTER,
                    "tooltip": "standard: drop tokens that are not words (symbols or punctuation only, one "
                               "character read below 0.8 confidence, a lone character of another script "
                               "among words, e.g. a pictogram read as '穴'). off: keep every token."}),
            },
        }

    RETURN_TYPES = (TEXT_TYPE, "STRING", "MASK", "IMAGE")
    RETURN_NAMES = ("text", "json", "mask", "preview")
    OUTPUT_TOOLTIPS = (
        "Words with boxes, one result per image.",
        "The result as JSON (with the tokens the word filter dropped under 'dropped'); edit it and feed it "
        "to 'GlyphSR Text From String' to correct the OCR.",
        "Text regions at the input resolution.",
        "The input with the words outlined and labelled.",
    )
    FUNCTION = "extract"
    CATEGORY = CATEGORY

    def extract(self, image: torch.Tensor, min_confidence: float, ocr_scale: str, mask_dilation: int,
                word_filter: str = DEFAULT_WORD_FILTER):
        images = comfy_to_pil(image, "image")
        pbar = progress_bar(len(images))
        results, masks, previews, records = [], [], [], []
        for index, pil in enumerate(images):
            check_interrupt()
            result, dropped = filter_words(read_text(pil, min_confidence=min_confidence, ocr_scale=ocr_scale),
                                           word_filter)
            if dropped:
                logger.info("GlyphSR OCR: image %d of %d, word filter dropped %s", index + 1, len(images),
                            "; ".join(f"{d.region.text!r} ({d.reason})" for d in dropped))
            if not result.regions:
                logger.info("GlyphSR OCR: no text found in image %d of %d", index + 1, len(images))
            results.append(result)
            records.append({**result.to_dict(), "dropped": [d.to_dict() for d in dropped]})
            masks.append(render_text_mask(result, pil.width, pil.height, mask_dilation))
            previews.append(draw_ocr_preview(pil, result, [(d.region, d.reason) for d in dropped]))
            pbar.update_absolute(index + 1)
        device = output_device()
        return (results, json.dumps(records, ensure_ascii=False, indent=2), masks_to_comfy(masks).to(device),
                pil_to_comfy(same_size(previews)).to(device))


class TextFromString:
    DESCRIPTION = (
        "Words typed or corrected by hand. Accepts the JSON of 'GlyphSR OCR Extract' or plain lines: "
        "'WORD' or 'WORD @ x0,y0,x1,y1' (fractions 0..1, or pixels of width x height)."
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "text": ("STRING", {"multiline": True, "default": "",
                                    "tooltip": "OCR JSON, or one word per line with an optional '@ x0,y0,x1,y1' box."}),
                "width": ("INT", {"default": 1024, "min": 1, "max": 16384, "step": 1,
                                  "tooltip": "Image width for pixel boxes (ignored when reference is connected)."}),
                "height": ("INT", {"default": 1024, "min": 1, "max": 16384, "step": 1,
                                   "tooltip": "Image height for pixel boxes (ignored when reference is connected)."}),
            },
            "optional": {
                "reference": ("IMAGE", {"tooltip": "Take width and height from this image."}),
            },
        }

    RETURN_TYPES = (TEXT_TYPE,)
    RETURN_NAMES = ("text",)
    FUNCTION = "parse"
    CATEGORY = CATEGORY

    def parse(self, text: str, width: int, height: int, reference: torch.Tensor | None = None):
        if reference is not None:
            reference = check_comfy_images(reference, "reference")
            height, width = int(reference.shape[1]), int(reference.shape[2])
        return (parse_text_input(text, width, height),)


NODE_CLASS_MAPPINGS = {"GlyphSR_OCRExtract": OCRExtract, "GlyphSR_TextFromString": TextFromString}
NODE_DISPLAY_NAME_MAPPINGS = {"GlyphSR_OCRExtract": "GlyphSR OCR Extract",
                              "GlyphSR_TextFromString": "GlyphSR Text From String"}
