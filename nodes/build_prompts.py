"""Build Prompts node: the scene and text prompt pairs from a caption and the OCR words."""

from __future__ import annotations

from ..glyphsr_core import defaults
from ..glyphsr_core.errors import pair_batches
from ..glyphsr_core.text.prompts import (
    DEFAULT_SCENE_NEGATIVE,
    DEFAULT_SCENE_SUFFIX,
    DEFAULT_TEXT_NEGATIVE,
    DEFAULT_TEXT_SUFFIX,
    PromptTemplates,
    build_prompts,
)
from .ocr import TEXT_TYPE
from .runtime import CATEGORY


def _first(values: list, name: str):
    if not values:
        raise ValueError(f"'{name}' received an empty list")
    return values[0]


class BuildPrompts:
    DESCRIPTION = (
        "Scene prompt = caption + quality suffix. Text prompt = the OCR words with their location "
        "(\"OPEN\" at the top left), then the caption and the text-restoration suffix. Batches give one "
        "prompt set per image: caption i goes with OCR result i, and one caption (or one result) goes with "
        "every item of the other; other size mismatches are an error. 'report' says which words were left out "
        "by max_words."
    )
    INPUT_IS_LIST = True
    OUTPUT_IS_LIST = (True, True, True, True, True)

    @classmethod
    def INPUT_TYPES(cls):
        multiline = {"multiline": True}
        return {
            "required": {
                "caption": ("STRING", {"multiline": True, "default": "",
                                       "tooltip": "Scene description (from 'GlyphSR VLM Caption' or typed)."}),
                "max_words": ("INT", {"default": defaults.MAX_WORDS, "min": 0, "max": 512, "step": 1,
                                      "tooltip": "At most this many distinct words go into the text prompt, "
                                                 "first (diffusers cuts prompts at CLIP's 77 tokens; ComfyUI "
                                                 "encodes 77-token chunks separately)."}),
                "include_locations": ("BOOLEAN", {"default": True,
                                                  "tooltip": "Say where each word is (top left ... bottom right)."}),
                "scene_suffix": ("STRING", {**multiline, "default": DEFAULT_SCENE_SUFFIX}),
                "scene_negative": ("STRING", {**multiline, "default": DEFAULT_SCENE_NEGATIVE}),
                "text_suffix": ("STRING", {**multiline, "default": DEFAULT_TEXT_SUFFIX}),
                "text_negative": ("STRING", {**multiline, "default": DEFAULT_TEXT_NEGATIVE}),
            },
            "optional": {
                "text": (TEXT_TYPE, {"tooltip": "Words from 'GlyphSR OCR Extract' or 'GlyphSR Text From String'."}),
            },
        }

    RETURN_TYPES = ("STRING", "STRING", "STRING", "STRING", "STRING")
    RETURN_NAMES = ("scene_positive", "scene_negative", "text_positive", "text_negative", "report")
    FUNCTION = "build"
    CATEGORY = CATEGORY

    def build(self, caption, max_words, include_locations, scene_suffix, scene_negative, text_suffix,
              text_negative, text=None):
        templates = PromptTemplates(
            scene_suffix=_first(scene_suffix, "scene_suffix"),
            scene_negative=_first(scene_negative, "scene_negative"),
            text_suffix=_first(text_suffix, "text_suffix"),
            text_negative=_first(text_negative, "text_negative"),
        )
        results = [result for batch in (text or []) for result in batch]
        captions = [c if isinstance(c, str) else str(c) for c in caption] or [""]
        pairs = pair_batches("caption", captions, "text", results) if results else [(c, None) for c in captions]
        outputs: tuple[list[str], ...] = ([], [], [], [], [])
        for caption_i, result in pairs:
            prompts = build_prompts(
                caption_i,
                result,
                templates=templates,
                max_words=_first(max_words, "max_words"),
                include_locations=_first(include_locations, "include_locations"),
                escape_weights=True,  # CLIP Text Encode reads (word:1.2) as weights
            )
            for values, value in zip(outputs, (prompts.scene_positive, prompts.scene_negative,
                                               prompts.text_positive, prompts.text_negative, prompts.summary())):
                values.append(value)
        return outputs


NODE_CLASS_MAPPINGS = {"GlyphSR_BuildPrompts": BuildPrompts}
NODE_DISPLAY_NAME_MAPPINGS = {"GlyphSR_BuildPrompts": "GlyphSR Build Prompts"}
