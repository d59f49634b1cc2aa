"""Stored word corrections: what they hold, how they meet a new OCR result, how a review makes them.

Corrections are kept relative to the raw OCR words, so the next run (same image, or OCR settings
that moved a box a little) gets the same corrected words:

- `change` / `delete` name the OCR word by its box: they apply to the word of the new result whose
  box overlaps theirs most, with an IoU of at least `MATCH_IOU`; with no such word they are skipped
  (the word they corrected is gone).
- `add` is a word the person drew: it is always kept, in reading order; when an OCR word now sits in
  the same box (IoU >= `MATCH_IOU`) that word takes the added text instead, so nothing is doubled.
- Each image's corrections remember the image size they were made on and apply only to a result of
  that size: a different picture loaded into the same workflow is not given another picture's words.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

from ..text.fidelity import box_iou
from ..types import Box, OcrResult, TextFormatError, TextRegion, quad_from_box

#: least box IoU at which a stored correction and a new OCR word are the same word
MATCH_IOU = 0.5
OPS = ("change", "delete", "add")
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Edit:
    """One correction; `box` in 0..1 fractions of the image, `was` the OCR text it replaced (a record)."""

    op: str
    box: Box
    text: str = ""
    was: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op, "box": [round(v, 6) for v in self.box]}
        if self.op != "delete":
            out["text"] = self.text
        if self.op != "add":
            out["was"] = self.was
        return out


@dataclass(frozen=True)
class ImageCorrections:
    """The corrections of one batch item and the size of the image they were made on."""

    width: int
    height: int
    edits: tuple[Edit, ...]


@dataclass(frozen=True)
class Applied:
    """A corrected result; `origins[i]` is the index of region i in the raw result, None for added words."""

    result: OcrResult
    origins: tuple[int | None, ...]
    changed: int = 0
    deleted: int = 0
    added: int = 0
    skipped: int = 0

    def summary(self) -> str:
        return (f"{self.changed} changed, {self.deleted} deleted, {self.added} added"
                + (f", {self.skipped} skipped (no OCR word in their box)" if self.skipped else ""))


def _edit_from_dict(data: Any, where: str) -> Edit:
    if not isinstance(data, dict) or data.get("op") not in OPS:
        raise TextFormatError(f"{where} must be an object with 'op' one of {', '.join(OPS)}, got {data!r}")
    box = data.get("box")
    if (not isinstance(box, list) or len(box) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)):
        raise TextFormatError(f"{where} needs 'box' as 4 numbers [x0, y0, x1, y1] (fractions 0..1), got {box!r}")
    text, was = data.get("text", ""), data.get("was", "")
    if not isinstance(text, str) or not isinstance(was, str) or (data["op"] != "delete" and not text.strip()):
        raise TextFormatError(f"{where} needs a non-empty string 'text' (and 'was' a string)")
    return Edit(data["op"], tuple(float(v) for v in box), text.strip(), was)  # type: ignore[arg-type]


def parse_corrections(text: str) -> list[ImageCorrections]:
    """The `corrections` widget value (empty: none) as one entry per batch item."""
    if not text or not text.strip():
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TextFormatError(f"'corrections' is not valid JSON: {exc.msg} (clear it to start again)") from exc
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list):
        raise TextFormatError("'corrections' must be an object with an 'images' list (clear it to start again)")
    out = []
    for i, image in enumerate(images):
        size = image.get("size") if isinstance(image, dict) else None
        edits = image.get("edits") if isinstance(image, dict) else None
        if (not isinstance(size, list) or len(size) != 2 or not all(isinstance(v, int) for v in size)
                or not isinstance(edits, list)):
            raise TextFormatError(f"'corrections' image {i + 1} needs 'size' [width, height] and an 'edits' list")
        out.append(ImageCorrections(size[0], size[1],
                                    tuple(_edit_from_dict(e, f"'corrections' image {i + 1} edit {j + 1}")
                                          for j, e in enumerate(edits))))
    return out


def corrections_to_json(images: Sequence[ImageCorrections]) -> str:
    """The widget value for these corrections ('' when there are none, so a workflow stays clean)."""
    if not any(image.edits for image in images):
        return ""
    return json.dumps({"version": FORMAT_VERSION,
                       "images": [{"size": [image.width, image.height], "edits": [e.to_dict() for e in image.edits]}
                                  for image in images]}, ensure_ascii=False)


def _best_match(box: Box, regions: Sequence[TextRegion | None]) -> int | None:
    best, best_iou = None, MATCH_IOU
    for index, region in enumerate(regions):
        if region is None or region.box is None:
            continue
        iou = box_iou(box, region.box)
        if iou >= best_iou:
            best, best_iou = index, iou
    return best


def _reads_after(region_box: Box, box: Box) -> bool:
    """Whether a word with `region_box` comes after one with `box` in reading order (lines, then left to right)."""
    cy = (region_box[1] + region_box[3]) / 2
    if cy > box[3]:
        return True
    same_line = box[1] <= cy <= box[3]
    return same_line and (region_box[0] + region_box[2]) / 2 > (box[0] + box[2]) / 2


def _insert_in_reading_order(regions: list[TextRegion], origins: list[int | None], region: TextRegion) -> None:
    box = region.box
    at = next((i for i, r in enumerate(regions) if r.box is not None and _reads_after(r.box, box)), len(regions))
    regions.insert(at, region)
    origins.insert(at, None)


def apply_corrections(raw: OcrResult, corrections: ImageCorrections | None) -> Applied:
    """`raw` with the stored corrections applied (see the module docstring for the matching rules)."""
    identity = Applied(raw, tuple(range(len(raw.regions))))
    if corrections is None or not corrections.edits:
        return identity
    if (corrections.width, corrections.height) != (raw.width, raw.height):
        return Applied(raw, identity.origins, skipped=len(corrections.edits))
    slots: list[TextRegion | None] = list(raw.regions)
    texts: dict[int, str] = {}
    counts = {"change": 0, "delete": 0, "add": 0, "skipped": 0}
    added = []
    for edit in corrections.edits:
        free = [r if i not in texts and r is not None else None for i, r in enumerate(slots)]
        index = _best_match(edit.box, free)
        if index is None:
            counts["add" if edit.op == "add" else "skipped"] += 1
            if edit.op == "add":
                added.append(TextRegion(edit.text, 1.0, quad_from_box(edit.box)))
        elif edit.op == "delete":
            slots[index] = None
            counts["delete"] += 1
        else:
            texts[index] = edit.text
            counts["change" if edit.op == "change" else "add"] += 1
    regions, origins = [], []
    for index, region in enumerate(slots):
        if region is not None:
            regions.append(TextRegion(texts[index], 1.0, region.quad) if index in texts else region)
            origins.append(index)
    for region in added:
        _insert_in_reading_order(regions, origins, region)
    return Applied(OcrResult(raw.width, raw.height, tuple(regions)), tuple(origins), counts["change"],
                   counts["delete"], counts["add"], counts["skipped"])


def corrections_from_review(raw: OcrResult, shown: Applied, words: Sequence[Any]) -> ImageCorrections:
    """The corrections that turn `raw` into the reviewed word list.

    `shown` is what the person saw (raw with the stored corrections applied); `words` are
    `ReviewWord`s: `id` picks a shown word (its text possibly changed), no id is a drawn word with
    its `box` in fractions. Raw words no longer present become deletions.
    """
    edits: list[Edit] = []
    kept: set[int] = set()
    for word in words:
        if word.id is None:
            edits.append(Edit("add", word.box, word.text))
            continue
        origin = shown.origins[word.id]
        if origin is None:
            edits.append(Edit("add", shown.result.regions[word.id].box, word.text))
            continue
        kept.add(origin)
        region = raw.regions[origin]
        if word.text != region.text and region.box is not None:
            edits.append(Edit("change", region.box, word.text, region.text))
    for index, region in enumerate(raw.regions):
        if index not in kept and region.box is not None:
            edits.append(Edit("delete", region.box, was=region.text))
    return ImageCorrections(raw.width, raw.height, tuple(edits))
