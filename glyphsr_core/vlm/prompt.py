"""Caption prompts: the default scene-description request and the optional OCR hint."""

from __future__ import annotations

from ..types import OcrResult
from .errors import CaptionInputError

#: What the method needs from the VLM: a scene description for the scene prompt. The words come
#: from OCR, so the model is asked where text is, not what it says (VLMs misread degraded text).
DEFAULT_CAPTION_PROMPT = (
    "Describe this image in one detailed paragraph for an image restoration model. Name the main "
    "objects, their materials and textures, the colours, the lighting and the layout of the scene. "
    "If the image contains text, say where it appears (for example on a sign, a label or a screen) "
    "and its style, but do not transcribe the text."
)

OCR_HINT = "The image contains the words: {words}."


def compose_prompt(prompt: str, text: OcrResult | None = None, append_words: bool = False,
                   max_words: int = 40) -> str:
    """The prompt, stripped, optionally followed by the words OCR found (quoted, in reading order)."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise CaptionInputError("the caption prompt is empty: write what the model should describe "
                                "(or reset it to the default prompt)")
    prompt = prompt.strip()
    if not append_words or text is None:
        return prompt
    words = [w.strip() for w in text.words if w.strip()][:max_words]
    if not words:
        return prompt
    quoted = ", ".join(f'"{w}"' for w in words)
    return f"{prompt} {OCR_HINT.format(words=quoted)}"
