"""Keep Words' letter test: a word the upscaler drew with other letters is repaired even when the OCR
still reads it right; a faithful word is left alone, whatever the upscaler's sharpening and grain."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from glyphsr_core.guard import ALL_TEXT, format_guard_report, keep_words
from glyphsr_core.guard.faithful import SHAPE_TOLERANCE, misshapen, shape_difference
from glyphsr_core.guard.masks import pixel_box
from glyphsr_core.sampling.colorfix import match_reference
from glyphsr_core.types import OcrResult, TextRegion, quad_from_box
from test_guard import LAYOUTS, degraded, render
from test_keep_words import WRONG, upscaler_look


def lenient_reader(guidance: OcrResult):
    """An OCR that guesses every word right from context, however its letters are drawn (as RapidOCR
    does with many of RealESRGAN_x4plus's bent letters); it counts how often it was asked."""
    calls = []

    def read(image: torch.Tensor) -> OcrResult:
        calls.append(1)
        return guidance

    read.calls = calls
    return read


@pytest.fixture(scope="module")
def scene():
    clean = render(LAYOUTS[0])
    from glyphsr_core.guard import ocr_reader

    guidance = ocr_reader(0.5)(clean)
    assert sorted(r.text.lower() for r in guidance.regions) == ["bread", "daily", "fresh", "open"]
    reference = degraded(clean, 3)
    return {"guidance": guidance, "reference": reference, "bent": upscaler_look(render(WRONG)),
            "faithful": upscaler_look(clean)}


def box_of(guidance: OcrResult, word: str):
    return next(r.box for r in guidance.regions if r.text.lower() == word)


def test_shape_difference_ignores_sharpening_and_grain_but_not_other_letters(scene):
    guidance = scene["guidance"]
    reference = match_reference(scene["reference"][None], scene["faithful"][None])[0]
    for word in ("open", "daily", "fresh", "bread"):  # the same letters, crisp with halos and grain: faithful
        assert shape_difference(scene["faithful"], reference, box_of(guidance, word)) < SHAPE_TOLERANCE / 2
        assert shape_difference(reference, reference, box_of(guidance, word)) == 0.0
    daily = box_of(guidance, "daily")
    assert shape_difference(scene["bent"], reference, daily) > SHAPE_TOLERANCE  # "DAIIY": an L became an I
    assert misshapen(scene["bent"], reference, daily) and not misshapen(scene["faithful"], reference, daily)
    assert not misshapen(scene["bent"], reference, None)  # a word with no place cannot be compared
    flat = torch.full_like(reference, 0.5)  # a reference with no letters there: nothing to compare with
    assert shape_difference(scene["bent"], flat, daily) == 0.0


def test_a_bent_word_that_still_reads_is_repaired_to_the_reference_letters(scene):
    reader = lenient_reader(scene["guidance"])
    result = keep_words(scene["bent"], scene["reference"], scene["guidance"], reader=reader)
    repaired = [w for w in result.report.words if w.action != "left"]
    assert [(w.expected, w.status, w.misshapen, w.final_status) for w in repaired] == [
        ("daily", "kept", True, "kept")]
    height, width = scene["bent"].shape[-2:]
    x0, y0, x1, y1 = pixel_box(repaired[0].box, width, height)
    assert (result.mask[y0:y1, x0:x1] == 1).all()  # the whole word rewritten ...
    reference = match_reference(scene["reference"][None], scene["bent"][None])[0]
    assert not misshapen(result.image, reference, repaired[0].box)  # ... with the reference's letters
    for word in ("open", "fresh", "bread"):  # the faithful words: not a pixel changed
        x0, y0, x1, y1 = pixel_box(box_of(scene["guidance"], word), width, height)
        assert (result.mask[y0:y1, x0:x1] == 0).all()
    outside = result.mask == 0
    assert torch.equal(result.image[:, outside], scene["bent"][:, outside])
    assert '"daily": read right, letters misshapen -> composited (' in format_guard_report([result.report])
    assert result.report.words[1].to_dict()["misshapen"] is True


def test_faithful_words_that_read_right_pass_through_with_one_reading(scene):
    reader = lenient_reader(scene["guidance"])
    result = keep_words(scene["faithful"], scene["reference"], scene["guidance"], reader=reader)
    assert result.mask.max() == 0 and torch.equal(result.image, scene["faithful"])
    assert not any(w.misshapen for w in result.report.words) and len(reader.calls) == 1


def test_all_text_does_not_judge_shapes(scene):
    result = keep_words(scene["bent"], scene["reference"], scene["guidance"], reader=lenient_reader(scene["guidance"]),
                        mode=ALL_TEXT)
    assert not any(w.misshapen for w in result.report.words)
    assert {w.repair for w in result.report.words} == {"detail"}  # the first rung reads right for every box


def test_a_right_word_that_a_repair_beside_it_breaks_is_repaired_too(scene):
    """An OCR that reads "open" as "opfn" once "daily" beside it is repaired (a detector that joins or
    splits lines differently): the repair keeps the image's F1, so it is adopted, and "open" then
    climbs the ladder itself instead of being left wrong."""
    guidance, bent = scene["guidance"], scene["bent"]
    height, width = bent.shape[-2:]
    boxes = {word: pixel_box(box_of(guidance, word), width, height) for word in ("open", "daily")}

    def touched(image: torch.Tensor, word: str) -> bool:
        x0, y0, x1, y1 = boxes[word]
        return not torch.equal(image[:, y0:y1, x0:x1], bent[:, y0:y1, x0:x1])

    def read(image: torch.Tensor) -> OcrResult:
        wrong = {"daily": "daiiy"} if not touched(image, "daily") else {}
        if touched(image, "daily") and not touched(image, "open"):
            wrong["open"] = "opfn"
        regions = tuple(replace(r, text=wrong.get(r.text.lower(), r.text)) for r in guidance.regions)
        return replace(guidance, regions=regions)

    result = keep_words(bent, scene["reference"], guidance, reader=read)
    by_word = {w.expected: w for w in result.report.words}
    assert by_word["daily"].final_status == by_word["open"].final_status == "kept"
    assert by_word["open"].action == "composited" and by_word["open"].status == "kept"
    assert result.report.f1_after == 1.0
    assert by_word["fresh"].action == by_word["bread"].action == "left"


def test_a_piece_of_a_split_word_is_repaired_only_with_the_word(scene):
    """An OCR that splits "daily" into "dai" (paired with the guidance word, wrong) and "ly" (invented)
    and reads "ly" only while its pixels are the upscaler's. Repairing "ly" on its own would make it
    go and patch half the word (doubled strokes on a real label, where the halves do not line up);
    it is a piece of "daily", and "daily" reads right under no rung: nothing is rewritten."""
    guidance, image = scene["guidance"], scene["faithful"]
    height, width = image.shape[-2:]
    x0, y0, x1, y1 = box_of(guidance, "daily")
    middle = x0 + 0.6 * (x1 - x0)
    piece = pixel_box((middle, y0, x1, y1), width, height)

    def read(picture: torch.Tensor) -> OcrResult:
        px0, py0, px1, py1 = piece
        regions = [r for r in guidance.regions if r.text.lower() != "daily"]
        regions.append(TextRegion("DAI", 0.9, quad_from_box((x0, y0, middle, y1))))
        if torch.equal(picture[:, py0:py1, px0:px1], image[:, py0:py1, px0:px1]):
            regions.append(TextRegion("LY", 0.9, quad_from_box((middle, y0, x1, y1))))
        return replace(guidance, regions=tuple(regions))

    result = keep_words(image, scene["reference"], guidance, reader=read)
    assert result.mask.max() == 0 and torch.equal(result.image, image)
    (pieces,) = [w for w in result.report.words if w.status == "invented"]
    assert pieces.found == "ly" and pieces.piece_of == "daily" and not pieces.needs_repair
    daily = next(w for w in result.report.words if w.expected == "daily")
    assert daily.status == "changed" and daily.final_status == "changed" and daily.action == "left"
    assert '"ly": read inside "daily" (a piece of it, repaired only with it), still reads "ly"' in format_guard_report(
        [result.report])

