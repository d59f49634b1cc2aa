"""The review a browser sends back: a small, bounded JSON document, checked before anything uses it.

    {"prompt_id": "<the running prompt>",
     "images": [{"words": [{"id": 0, "text": "OPEN"},                     # a shown word, maybe retyped
                           {"text": "DAILY", "box": [x0, y0, x1, y1]}]}]}  # a drawn word, image pixels

One entry per batch item, words in reading order; a shown word left out is deleted. Nothing else
is accepted: no other keys, no file names, at most `MAX_WORDS` words of at most `MAX_TEXT_CHARS`
characters, boxes of finite numbers inside the image, the whole body at most `MAX_BODY_BYTES`.
"""

from __future__ import annotations

import json
import math
import unicodedata
from dataclasses import dataclass
from typing import Any, Sequence

from ..errors import InvalidInputError
from ..types import Box

MAX_BODY_BYTES = 64 * 1024
MAX_WORDS = 400
MAX_TEXT_CHARS = 120
MAX_ID_CHARS = 100
DOCUMENT_KEYS = {"prompt_id", "images"}
WORD_KEYS = {"id", "text", "box"}


class ReviewDocumentError(InvalidInputError):
    """A review document that is not what the review dialog sends; the message says what is wrong and
    `status` is the HTTP status that answers it (400 malformed, 409 another prompt, 413 too large)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ReviewWord:
    """A reviewed word: `id` of a shown word, or None with `box` (0..1 fractions) for a drawn one."""

    text: str
    id: int | None = None
    box: Box | None = None


def parse_body(body: bytes) -> Any:
    """The JSON of a request body no larger than MAX_BODY_BYTES."""
    if len(body) > MAX_BODY_BYTES:
        raise ReviewDocumentError(f"the review is {len(body)} bytes; at most {MAX_BODY_BYTES} are accepted",
                                  status=413)
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReviewDocumentError(f"the review is not UTF-8 JSON ({exc})") from None


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ReviewDocumentError(f"{where}: 'text' must be a string")
    text = unicodedata.normalize("NFC", value.strip())
    if not text or len(text) > MAX_TEXT_CHARS:
        raise ReviewDocumentError(f"{where}: 'text' must hold 1 to {MAX_TEXT_CHARS} characters")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text):
        raise ReviewDocumentError(f"{where}: 'text' holds a control character")
    return text


def _box(value: Any, size: tuple[int, int], where: str) -> Box:
    width, height = size
    if (not isinstance(value, list) or len(value) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)):
        raise ReviewDocumentError(f"{where}: 'box' must be 4 finite numbers [x0, y0, x1, y1] in pixels")
    x0, y0, x1, y1 = (float(v) for v in value)
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise ReviewDocumentError(f"{where}: 'box' {value} is not a box inside the {width}x{height} image")
    return (x0 / width, y0 / height, x1 / width, y1 / height)


def _word(value: Any, size: tuple[int, int], shown: int, where: str) -> ReviewWord:
    if not isinstance(value, dict) or not set(value) <= WORD_KEYS:
        raise ReviewDocumentError(f"{where} must be an object with only {', '.join(sorted(WORD_KEYS))}")
    text = _text(value.get("text"), where)
    if ("id" in value) == ("box" in value):
        raise ReviewDocumentError(f"{where} needs either 'id' (a shown word) or 'box' (a drawn word)")
    if "box" in value:
        return ReviewWord(text, box=_box(value["box"], size, where))
    index = value["id"]
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < shown:
        raise ReviewDocumentError(f"{where}: 'id' must be the number of a shown word (0 to {shown - 1})")
    return ReviewWord(text, id=index)


def _image_words(value: Any, size: tuple[int, int], shown: int, where: str) -> list[ReviewWord]:
    words = value.get("words") if isinstance(value, dict) and set(value) == {"words"} else None
    if not isinstance(words, list):
        raise ReviewDocumentError(f"{where} must be an object with only a 'words' list")
    if len(words) > MAX_WORDS:
        raise ReviewDocumentError(f"{where} has {len(words)} words; at most {MAX_WORDS} are accepted")
    out = [_word(w, size, shown, f"{where} word {j + 1}") for j, w in enumerate(words)]
    ids = [w.id for w in out if w.id is not None]
    if len(ids) != len(set(ids)):
        raise ReviewDocumentError(f"{where} names a shown word twice")
    return out


def validate_review(data: Any, prompt_id: str, sizes: Sequence[tuple[int, int]],
                    shown: Sequence[int]) -> list[list[ReviewWord]]:
    """The reviewed words of each batch item, or ReviewDocumentError saying what is wrong.

    `sizes` are the (width, height) in pixels of the images shown, `shown` how many words each showed.
    """
    if not isinstance(data, dict) or not set(data) <= DOCUMENT_KEYS or not DOCUMENT_KEYS <= set(data):
        raise ReviewDocumentError("the review must be an object with exactly 'prompt_id' and 'images'")
    if not isinstance(data["prompt_id"], str) or len(data["prompt_id"]) > MAX_ID_CHARS:
        raise ReviewDocumentError("'prompt_id' must be the id of the running prompt")
    if data["prompt_id"] != prompt_id:
        raise ReviewDocumentError(f"the review is for prompt {data['prompt_id']!r}, not the one waiting",
                                  status=409)
    images = data["images"]
    if not isinstance(images, list) or len(images) != len(sizes):
        raise ReviewDocumentError(f"'images' must be a list of {len(sizes)} (one per image shown)")
    return [_image_words(image, size, count, f"image {i + 1}")
            for i, (image, size, count) in enumerate(zip(images, sizes, shown))]
