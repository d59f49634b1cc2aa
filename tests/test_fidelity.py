"""Text fidelity: pairing guidance words with the words read from an upscaled output."""

import numpy as np
import pytest
import torch
from PIL import Image

from glyphsr_core.text.fidelity import (CHANGED, INVENTED, KEPT, MISSING, box_iou, compare_words, format_report,
                                   split_words, text_distance)
from glyphsr_core.types import OcrResult, TextRegion, quad_from_box
from textimages import render_words


def result(*words):
    """OcrResult from (text, box) pairs; box None = position unknown."""
    return OcrResult(400, 200, tuple(TextRegion(t, 0.9, None if b is None else quad_from_box(b)) for t, b in words))


def statuses(fidelity):
    return [(o.status, o.expected and o.expected.text, o.found and o.found.text) for o in fidelity.outcomes]


def test_same_words_at_same_places_are_kept_with_f1_one():
    guide = result(("OPEN", (0.1, 0.1, 0.3, 0.2)), ("NOW", (0.35, 0.1, 0.5, 0.2)))
    moved_a_little = result(("Open!", (0.11, 0.1, 0.31, 0.21)), ("now", (0.36, 0.11, 0.5, 0.2)))
    fidelity = compare_words(guide, moved_a_little)
    assert statuses(fidelity) == [(KEPT, "open", "open"), (KEPT, "now", "now")]
    assert fidelity.counts.f1 == 1.0


def test_changed_missing_and_invented_words():
    guide = result(("FRESH", (0.1, 0.1, 0.3, 0.2)), ("BREAD", (0.4, 0.1, 0.6, 0.2)), ("DAILY", (0.1, 0.5, 0.3, 0.6)))
    output = result(("FRESII", (0.1, 0.1, 0.3, 0.2)), ("BREAD", (0.4, 0.1, 0.6, 0.2)), ("SALE", (0.7, 0.7, 0.9, 0.8)))
    fidelity = compare_words(guide, output)
    assert statuses(fidelity) == [(CHANGED, "fresh", "fresii"), (KEPT, "bread", "bread"),
                                  (MISSING, "daily", None), (INVENTED, None, "sale")]
    counts = fidelity.counts
    assert (counts.tp, counts.n_gt, counts.n_pred) == (1, 3, 3)
    assert counts.f1 == pytest.approx(1 / 3)
    report = format_report([fidelity])
    assert '"fresh": changed to "fresii"' in report and '"daily": missing' in report
    assert '"sale": invented' in report and '"bread": kept' in report
    assert report.startswith("word F1 0.333")


def test_a_word_elsewhere_is_not_the_same_word():
    """Same spelling far away: the guidance word is missing there and the other one is invented."""
    guide = result(("EXIT", (0.1, 0.1, 0.2, 0.2)))
    output = result(("EXIT", (0.7, 0.7, 0.8, 0.8)))
    assert [o.status for o in compare_words(guide, output).outcomes] == [MISSING, INVENTED]


def test_words_without_position_pair_by_spelling():
    typed = result(("OPEN", None), ("BAKERY", None))
    output = result(("BAKFRY", (0.1, 0.1, 0.4, 0.2)), ("OPEN", (0.5, 0.1, 0.7, 0.2)), ("XQZ", (0.1, 0.5, 0.2, 0.6)))
    assert statuses(compare_words(typed, output)) == [(KEPT, "open", "open"), (CHANGED, "bakery", "bakfry"),
                                                      (INVENTED, None, "xqz")]
    assert statuses(compare_words(typed, output, max_text_distance=0.0))[1][0] == MISSING


def test_overlap_threshold_decides_same_place():
    guide = result(("SALE", (0.0, 0.0, 0.2, 0.1)))
    output = result(("SALE", (0.1, 0.0, 0.3, 0.1)))  # IoU 1/3
    assert compare_words(guide, output, min_overlap=0.3).outcomes[0].status == KEPT
    assert compare_words(guide, output, min_overlap=0.5).outcomes[0].status == MISSING


def test_exact_spelling_wins_over_larger_overlap():
    """Two output words over one guidance box: the one that reads the same is its partner."""
    guide = result(("CAFE", (0.1, 0.1, 0.3, 0.2)))
    output = result(("CAR", (0.1, 0.1, 0.3, 0.2)), ("CAFE", (0.15, 0.1, 0.35, 0.2)))
    assert statuses(compare_words(guide, output)) == [(KEPT, "cafe", "cafe"), (INVENTED, None, "car")]


def test_multi_word_region_is_split_along_its_quad():
    line = OcrResult(100, 100, (TextRegion("AB CD", 1.0, quad_from_box((0.0, 0.0, 0.5, 0.1))),))
    words = split_words(line)
    assert [w.text for w in words] == ["ab", "cd"]
    assert words[0].box == pytest.approx((0.0, 0.0, 0.2, 0.1))
    assert words[1].box == pytest.approx((0.3, 0.0, 0.5, 0.1))
    separate = result(("AB", (0.0, 0.0, 0.2, 0.1)), ("CD", (0.3, 0.0, 0.5, 0.1)))
    assert compare_words(line, separate).counts.f1 == 1.0


def test_punctuation_only_regions_are_not_words_and_empty_sides_score_one():
    assert split_words(result(("--", (0.1, 0.1, 0.2, 0.2)))) == []
    nothing = compare_words(result(), result(("!", (0.1, 0.1, 0.2, 0.2))))
    assert nothing.outcomes == [] and nothing.counts.f1 == 1.0
    assert "no words" in format_report([nothing])
    assert compare_words(result(("OPEN", None)), result()).counts.f1 == 0.0


def test_changed_regions_cover_both_places_of_changed_words_only():
    guide = result(("FRESH", (0.1, 0.1, 0.3, 0.2)), ("BREAD", (0.4, 0.1, 0.6, 0.2)))
    output = result(("FRESII", (0.12, 0.1, 0.3, 0.2)), ("BREAD", (0.4, 0.1, 0.6, 0.2)))
    boxes = [r.box for r in compare_words(guide, output).changed_regions().regions]
    assert boxes == [(0.1, 0.1, 0.3, 0.2), (0.12, 0.1, 0.3, 0.2)]


def test_helpers_and_argument_checks():
    assert box_iou((0, 0, 1, 1), (0, 0, 1, 1)) == 1.0
    assert box_iou((0, 0, 1, 1), (1, 1, 2, 2)) == 0.0
    assert text_distance("open", "opem") == 0.25 and text_distance("", "") == 0.0
    with pytest.raises(ValueError, match="min_overlap"):
        compare_words(result(), result(), min_overlap=0.0)
    with pytest.raises(ValueError, match="max_text_distance"):
        compare_words(result(), result(), max_text_distance=2.0)


# ---------------------------------------------------------------------------------------------
# the node, with real OCR


@pytest.fixture(scope="module")
def sign():
    image, _ = render_words([["OPEN", "NOW"], ["FRESH", "BREAD"]], size=(480, 240), font_size=40)
    return image


def to_comfy(*images):
    return torch.stack([torch.from_numpy(np.asarray(i, dtype=np.float32) / 255.0) for i in images])


def test_node_image_against_its_own_ocr_scores_one(pack, sign):
    node = pack.NODE_CLASS_MAPPINGS["GlyphSR_TextFidelity"]()
    ocr = pack.NODE_CLASS_MAPPINGS["GlyphSR_OCRExtract"]()
    image = to_comfy(sign)
    text = ocr.extract(image, 0.5, "auto", 0)[0]
    f1, report, mask = node.check(image, 0.5, "auto", 0.3, 4, text=text)
    assert f1 == 1.0
    assert report.count(": kept") == 4
    assert mask.shape == (1, 240, 480) and mask.sum() == 0


def test_node_upscaled_output_checked_against_the_small_input(pack, sign):
    """No guidance text: the words of the input image are the guidance (any upscaler can be checked)."""
    node = pack.NODE_CLASS_MAPPINGS["GlyphSR_TextFidelity"]()
    small = to_comfy(sign.resize((240, 120), Image.Resampling.BICUBIC))
    f1, report, mask = node.check(to_comfy(sign), 0.5, "auto", 0.3, 0, input_image=small)
    assert f1 == 1.0, report


def test_node_reports_a_changed_word_and_masks_it(pack, sign):
    node = pack.NODE_CLASS_MAPPINGS["GlyphSR_TextFidelity"]()
    altered, _ = render_words([["OPEN", "NOW"], ["FRESH", "BRAID"]], size=(480, 240), font_size=40)
    text = pack.NODE_CLASS_MAPPINGS["GlyphSR_OCRExtract"]().extract(to_comfy(sign), 0.5, "auto", 0)[0]
    f1, report, mask = node.check(to_comfy(altered), 0.5, "auto", 0.3, 0, text=text)
    assert f1 == pytest.approx(0.75)
    assert '"bread": changed to "braid"' in report
    ys, xs = torch.nonzero(mask[0], as_tuple=True)
    assert mask.shape == (1, 240, 480) and len(xs) > 0
    assert ys.min() > 80 and xs.min() > 120  # only the second word of the second line


def test_node_needs_guidance_and_matching_batches(pack, sign):
    node = pack.NODE_CLASS_MAPPINGS["GlyphSR_TextFidelity"]()
    with pytest.raises(ValueError, match="connect 'text'"):
        node.check(to_comfy(sign), 0.5, "auto", 0.3, 0)
    three = [OcrResult(480, 240, ())] * 3
    with pytest.raises(ValueError, match=r"'text' holds 3 item\(s\) but 'image' holds 2"):
        node.check(to_comfy(sign, sign), 0.5, "auto", 0.3, 0, text=three)


@pytest.fixture
def counted_ocr(pack, monkeypatch):
    """The node's OCR replaced by one that reads 'OPEN' at the top left and counts its calls."""
    calls = []

    def read_text(image, **_):
        calls.append(image.size)
        return result(("OPEN", (0.0, 0.0, 0.5, 0.5)))

    monkeypatch.setattr(pack.nodes.text_fidelity, "read_text", read_text)
    return calls


def test_node_one_guidance_checks_every_image_once(pack, counted_ocr):
    node = pack.NODE_CLASS_MAPPINGS["GlyphSR_TextFidelity"]()
    images = torch.zeros(3, 32, 64, 3)
    f1, report, mask = node.check(images, 0.5, "1", 0.3, 0, text=[result(("OPEN", (0.0, 0.0, 0.5, 0.5)))])
    assert len(counted_ocr) == 3 and mask.shape == (3, 32, 64) and f1 == 1.0


def test_node_pairs_guidance_i_with_image_i(pack, counted_ocr):
    node = pack.NODE_CLASS_MAPPINGS["GlyphSR_TextFidelity"]()
    guidance = [result(("OPEN", (0.0, 0.0, 0.5, 0.5))), result(("SHUT", (0.0, 0.0, 0.5, 0.5)))]
    f1, report, mask = node.check(torch.zeros(2, 32, 64, 3), 0.5, "1", 0.3, 0, text=guidance)
    assert len(counted_ocr) == 2 and mask.shape == (2, 32, 64)
    assert f1 == pytest.approx(0.5)  # image 1 kept OPEN, image 2 reads OPEN where SHUT was expected
    assert mask[0].sum() == 0 and mask[1, :16, :32].min() == 1.0


def test_node_refuses_several_guidances_for_one_image(pack, counted_ocr):
    node = pack.NODE_CLASS_MAPPINGS["GlyphSR_TextFidelity"]()
    two = [result(("OPEN", (0.0, 0.0, 0.5, 0.5)))] * 2
    with pytest.raises(ValueError, match=r"'text' holds 2 item\(s\) but 'image' holds 1.*one 'text'"):
        node.check(torch.zeros(1, 32, 64, 3), 0.5, "1", 0.3, 0, text=two)
    with pytest.raises(ValueError, match=r"'input_image' holds 2 item\(s\) but 'image' holds 1"):
        node.check(torch.zeros(1, 32, 64, 3), 0.5, "1", 0.3, 0, input_image=torch.zeros(2, 32, 64, 3))
    assert counted_ocr == []  # refused before any image was read


def test_node_accepts_rgba_output_and_blank_images(pack, sign):
    node = pack.NODE_CLASS_MAPPINGS["GlyphSR_TextFidelity"]()
    rgba = torch.cat([to_comfy(sign), torch.ones(1, 240, 480, 1)], dim=-1)
    blank = torch.full((1, 240, 480, 3), 0.9)
    f1, report, _ = node.check(torch.cat([rgba[..., :3], blank]), 0.5, "auto", 0.3, 0,
                               text=[OcrResult(480, 240, ())])
    assert f1 == 0.0 and report.count(": invented") == 4  # nothing expected, four words in image 1
    f1, report, _ = node.check(rgba, 0.5, "auto", 0.3, 0, input_image=rgba)
    assert f1 == 1.0
