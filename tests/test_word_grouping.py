"""Words as a person reads them: letters OCR returned one by one are merged back into their word;
spaces and dropped tokens never reach the font warning; previews stay legible on small pictures."""

import logging

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from glyphsr_core.ocr import read_text
from glyphsr_core.ocr.engine import DetectedWord
from glyphsr_core.ocr.grouping import group_letters
from glyphsr_core.ocr.rapid import _join_cjk, fold_fullwidth
from glyphsr_core.text import fonts as textfonts
from glyphsr_core.text.fonts import font_chain, render_text
from glyphsr_core.text.preview import MIN_LABEL_PX, draw_ocr_preview, label_size, layout_preview
from glyphsr_core.types import OcrResult, TextRegion, quad_from_box
from textimages import render_words

NOTO = textfonts.PACK_FONTS_DIR / "NotoSans-Regular-LatinGreekCyrillic.ttf"
H = 60  # letter (box) height of the synthetic tokens


def tok(text, x0, x1, line=0, attached=False, y0=100, height=H, confidence=0.99):
    return DetectedWord(text, confidence, [(x0, y0), (x1, y0), (x1, y0 + height), (x0, y0 + height)], line, attached)


def texts(words):
    return [w.text for w in words]


# -- one detected line: the recogniser's spaces ---------------------------------------------------
def test_pieces_read_without_a_space_are_one_word_with_the_union_box_and_the_lower_confidence():
    words = [tok("19:54", 39, 183), tok("M", 216, 248, confidence=1.0), tok("OBILE", 272, 453, attached=True, confidence=0.9)]
    grouped = group_letters(words)
    assert texts(grouped) == ["19:54", "MOBILE"]
    assert grouped[1].quad == [(216, 100), (453, 100), (453, 160), (216, 160)]
    assert grouped[1].confidence == 0.9


def test_two_long_pieces_read_without_a_space_stay_two_words():
    # the recogniser missed the space of "HOTEL CENTRAL" (0.5 letter heights); a word cut at a wide
    # letter gap loses a letter or two, not five
    words = [tok("HOTEL", 53, 282), tok("CENTRAL", 317, 627, attached=True)]
    assert texts(group_letters(words)) == ["HOTEL", "CENTRAL"]
    assert texts(group_letters([tok("CH", 0, 80), tok("MA", 120, 200, attached=True)])) == ["CHMA"]


def test_a_space_the_recogniser_read_stays_a_word_break_even_before_a_one_letter_word():
    # "4 Pharmacy" and "PLAZA 7": real one-character words 0.33 letter heights from their neighbours
    assert texts(group_letters([tok("4", 0, 40), tok("Pharmacy", 60, 400)])) == ["4", "Pharmacy"]
    assert texts(group_letters([tok("PLAZA", 0, 200), tok("7", 222, 250)])) == ["PLAZA", "7"]


def test_boxes_that_touch_are_one_word_whatever_space_was_decoded():
    assert texts(group_letters([tok("PLAC", 60, 309), tok("E", 309, 369), tok("DU", 413, 546)])) == ["PLACE", "DU"]


def test_rapidocr_marks_pieces_read_without_a_space_as_attached():
    words = _join_cjk([tok("19:54", 0, 10), tok("M", 20, 30), tok("OBILE", 40, 90)], "19:54 MOBILE")
    assert [w.attached for w in words] == [False, False, True]


def test_fullwidth_latin_is_read_as_ascii_except_in_cjk_words():
    assert fold_fullwidth("PＬACE") == "PLACE" and fold_fullwidth("Ｍ２") == "M2"
    assert fold_fullwidth("東京ＡＢ") == "東京ＡＢ"


# -- letter-spaced type: the line's own spacing ---------------------------------------------------
def _spaced(word_gaps, letter_gap=12, width=30, line_per_letter=False):
    """One-letter tokens of "Mairie du": `letter_gap` px between letters, `word_gaps` px after index."""
    words, x = [], 10
    for index, ch in enumerate("Mairiedu"):
        words.append(tok(ch, x, x + width, line=index if line_per_letter else 0))
        x += width + word_gaps.get(index, letter_gap)
    return words


@pytest.mark.parametrize("line_per_letter", [False, True])
def test_letter_spaced_word_is_one_word_and_a_real_gap_starts_the_next(line_per_letter):
    grouped = group_letters(_spaced({5: 50}, line_per_letter=line_per_letter))
    assert texts(grouped) == ["Mairie", "du"]
    # "Mairie" spans the first letter's left edge to the sixth's right edge: 10 + 6 * 30 + 5 * 12
    assert grouped[0].quad == [(10, 100), (250, 100), (250, 160), (10, 160)]
    assert grouped[1].quad[0] == (300, 100) and grouped[1].quad[1] == (372, 100)


def test_very_wide_letter_spacing_still_reads_as_words():
    # letters 0.6 letter heights apart, the word gap 1.4: a person still reads two words
    assert texts(group_letters(_spaced({5: 84}, letter_gap=36))) == ["Mairie", "du"]


def test_evenly_spaced_letters_without_a_larger_gap_are_one_word():
    assert texts(group_letters(_spaced({}))) == ["Mairiedu"]


# -- separate detected boxes: spacing relative to letter height ----------------------------------
def test_detector_split_letter_joins_its_word_only_when_close():
    assert texts(group_letters([tok("Mairi", 0, 150, line=0), tok("e", 160, 185, line=1)])) == ["Mairie"]
    # 0.5 letter heights: a word break
    assert texts(group_letters([tok("Mairie", 0, 180, line=0), tok("a", 210, 235, line=1)])) == ["Mairie", "a"]


def test_two_multi_letter_boxes_stay_two_words_however_close():
    assert texts(group_letters([tok("TRIBOX", 0, 200, line=0), tok("131.86", 210, 400, line=1)])) == ["TRIBOX", "131.86"]


def test_letters_of_different_lines_of_print_are_never_merged():
    stacked = [tok("H", 0, 30, line=0, y0=0), tok("O", 0, 30, line=1, y0=70), tok("T", 0, 30, line=2, y0=140)]
    assert texts(group_letters(stacked)) == ["H", "O", "T"]
    # a line 15 px lower but overlapping by less than half the letter height: another line
    assert texts(group_letters([tok("A", 0, 30, line=0, y0=0), tok("B", 35, 65, line=1, y0=35)])) == ["A", "B"]


def test_rotated_line_letters_merge_into_a_rotated_quad():
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))

    def rotated(text, x0, x1, line):
        corners = [(x0, 0), (x1, 0), (x1, H), (x0, H)]
        return DetectedWord(text, 0.99, [(x * c - y * s, x * s + y * c) for x, y in corners], line)

    grouped = group_letters([rotated("Mairi", 0, 150, 0), rotated("e", 155, 180, 1)])
    assert texts(grouped) == ["Mairie"]
    expected = [(x * c - y * s, x * s + y * c) for x, y in [(0, 0), (180, 0), (180, H), (0, H)]]
    assert np.allclose(grouped[0].quad, expected, atol=1e-6)
    # a multi-letter token at 40 degrees to the line is on another line
    other = DetectedWord("du", 0.99, [(160, 80), (200, 110), (170, 150), (130, 120)], 1)
    assert texts(group_letters([rotated("Mairie", 0, 150, 0), other])) == ["Mairie", "du"]


def test_cjk_and_latin_are_not_glued():
    assert texts(group_letters([tok("出口", 0, 120), tok("B", 120, 150, attached=True)])) == ["出口", "B"]
    # Hangul one-syllable words with spaces are words, not letter-spaced type
    assert texts(group_letters([tok("집", 0, 40), tok("앞", 52, 92), tok("길", 104, 144)])) == ["집", "앞", "길"]


class _FakeEngine:
    name = "fake"

    def __init__(self, words):
        self.words = words

    def detect_words(self, image, min_confidence):
        return list(self.words)


def test_read_text_groups_by_default_and_gives_the_engine_words_when_asked():
    engine = _FakeEngine([tok("M", 100, 130), tok("OBILE", 150, 300, attached=True)])
    image = np.full((400, 1200, 3), 255, np.uint8)
    grouped = read_text(image, engine=engine)
    assert grouped.words == ["MOBILE"]
    assert grouped.regions[0].box == pytest.approx((100 / 1200, 0.25, 0.25, 0.4))
    assert read_text(image, engine=engine, group_letters=False).words == ["M", "OBILE"]


# -- real RapidOCR on rendered letter-spaced and italic type ---------------------------------------
def _letter_spaced(text, size, tracking, shear=0.0):
    font = ImageFont.truetype(str(NOTO), size)
    width, height = int(sum(font.getlength(ch) + tracking * size for ch in text) + 2 * size), int(2.6 * size)
    image = Image.new("RGB", (width, height), (235, 232, 220))
    draw = ImageDraw.Draw(image)
    x = size
    for ch in text:
        draw.text((x, size // 2), ch, font=font, fill=(20, 20, 20))
        x += font.getlength(ch) + tracking * size
    if shear:  # italic: the top of each letter leans right
        image = image.transform(image.size, Image.Transform.AFFINE, (1, shear, -shear * height / 2, 0, 1, 0),
                                resample=Image.Resampling.BICUBIC, fillcolor=(235, 232, 220))
    return image


@pytest.mark.parametrize("text, size, tracking, shear, expected", [
    ("MOBILE", 20, 0.8, 0.0, ["MOBILE"]),
    ("Mairie du", 40, 0.8, 0.0, ["Mairie", "du"]),
    ("Mairie du", 20, 0.8, 0.25, ["Mairie", "du"]),
])
def test_rapidocr_letters_of_spaced_and_italic_words_come_back_as_words(text, size, tracking, shear, expected):
    image = _letter_spaced(text, size, tracking, shear)
    as_returned = read_text(image, group_letters=False).words
    if sum(len(w) == 1 for w in as_returned) < 4:
        pytest.skip(f"this recogniser build does not split {text!r} into letters ({as_returned})")
    assert read_text(image).words == expected


def test_rapidocr_tight_words_with_a_real_gap_stay_two_words():
    image, _ = render_words([["OPEN", "NOW"], ["FRESH", "BREAD"]], size=(480, 240), font_size=40)
    assert read_text(image).words == read_text(image, group_letters=False).words == ["OPEN", "NOW", "FRESH", "BREAD"]


# -- font warnings ---------------------------------------------------------------------------------
UNASSIGNED = "\u0378"  # no font draws an unassigned code point


def test_a_space_beside_a_missing_character_is_never_reported(caplog):
    textfonts._reported.discard(UNASSIGNED)
    with caplog.at_level(logging.WARNING, logger="glyphsr_core.text.fonts"):
        render_text(f"{UNASSIGNED} dropped: lone character", 20)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "U+0378" in messages[0] and "U+0020" not in messages[0]
    assert font_chain(None).missing(f"A{UNASSIGNED} {UNASSIGNED}\u00a0B") == [UNASSIGNED]


def test_preview_does_not_warn_about_dropped_tokens(caplog):
    textfonts._reported.discard(UNASSIGNED)
    image = Image.new("RGB", (173, 256), (28, 52, 110))
    kept = OcrResult(173, 256, (TextRegion("Mairie", 0.99, quad_from_box((0.1, 0.3, 0.6, 0.4))),))
    dropped = [(TextRegion(UNASSIGNED, 0.9, quad_from_box((0.4, 0.05, 0.6, 0.2))), "lone Greek character")]
    with caplog.at_level(logging.WARNING, logger="glyphsr_core.text.fonts"):
        draw_ocr_preview(image, kept, dropped)
    assert [r.getMessage() for r in caplog.records] == []


# -- preview legibility ----------------------------------------------------------------------------
def _inside(rect, width, height):
    return 0 <= rect[0] < rect[2] <= width and 0 <= rect[1] < rect[3] <= height


def _mairie_result(width, height):
    boxes = {"Mairie": (0.08, 0.32, 0.62, 0.42), "du": (0.7, 0.32, 0.9, 0.42), "PANTHEON": (0.12, 0.5, 0.88, 0.6),
             "5e": (0.28, 0.7, 0.42, 0.78), "arr.": (0.5, 0.7, 0.82, 0.78)}
    regions = tuple(TextRegion(t, 1.0, quad_from_box(b)) for t, b in boxes.items())
    dropped = [(TextRegion("Y", 0.77, quad_from_box((0.38, 0.0, 0.62, 0.25))),
                "one character read with confidence 0.77 < 0.8")]
    return OcrResult(width, height, regions), dropped


def test_small_preview_numbers_the_words_and_lists_them_under_the_picture():
    result, dropped = _mairie_result(173, 256)
    layout = layout_preview(173, 256, result, dropped)
    assert layout.labels == []  # no text over a picture this small
    assert [number for _, number, _ in layout.markers] == ["1", "2", "3", "4", "5", "6"]
    assert [is_dropped for _, _, is_dropped in layout.markers] == [False] * 5 + [True]
    assert all(_inside(rect, 173, 256) for rect, _, _ in layout.markers)
    # markers are the label size (10 px text) and never overlap each other
    sides = [rect[2] - rect[0] for rect, _, _ in layout.markers]
    assert max(sides) <= 2 * MIN_LABEL_PX
    rects = [rect for rect, _, _ in layout.markers]
    assert not any(a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
                   for i, a in enumerate(rects) for b in rects[i + 1:])
    assert layout.legend[0] == ("1  Mairie  1.00", False)
    assert layout.legend[-1] == ("6  Y  dropped: one character read with confidence 0.77 < 0.8", True)
    preview = draw_ocr_preview(Image.new("RGB", (173, 256), (28, 52, 110)), result, dropped)
    assert preview.size == layout.canvas_size == (320, 256 + 6 * 19 + 4)


def test_dropped_tokens_leave_the_picture_uncovered_but_a_thin_outline_and_a_small_marker():
    picture = Image.new("RGB", (173, 256), (28, 52, 110))
    result, dropped = _mairie_result(173, 256)
    preview = np.asarray(draw_ocr_preview(picture, OcrResult(173, 256, ()), dropped))[:256, :173]
    red = (preview[..., 0] > 200) & (preview[..., 1] < 100) & (preview[..., 2] < 100)
    # the 41 x 64 px outline (1 px) plus a marker of at most 20 x 20 px: nothing like a label across the sign
    assert 100 < red.sum() < 41 * 2 + 64 * 2 + 20 * 20
    assert red[:, 120:].sum() == 0 and red[100:].sum() == 0


@pytest.mark.parametrize("size", [(480, 240), (4000, 3000)])
def test_labels_are_scaled_to_the_picture_and_lie_inside_it(size):
    width, height = size
    result, _ = _mairie_result(width, height)
    layout = layout_preview(width, height, result)
    assert label_size(width, height) == max(MIN_LABEL_PX, round(min(width, height) / 40))
    assert [text for _, text in layout.labels] == ["Mairie 1.00", "du 1.00", "PANTHEON 1.00", "5e 1.00", "arr. 1.00"]
    assert all(_inside(rect, width, height) for rect, _ in layout.labels)
    heights = [rect[3] - rect[1] for rect, _ in layout.labels]
    # label boxes are the ink of the text (capitals ~0.7 of the font size) plus padding
    assert 0.6 * label_size(width, height) <= max(heights) <= 1.5 * label_size(width, height)
    assert layout.canvas_size == (width, height)  # no legend needed


def test_a_label_wider_than_the_picture_is_shortened_not_cut_off():
    result = OcrResult(200, 200, (TextRegion("Internationalisation-Zentrum-Nordbahnhof", 0.97,
                                             quad_from_box((0.05, 0.4, 0.95, 0.5))),))
    (rect, text), = layout_preview(200, 200, result).labels
    assert text.endswith("…") and text.startswith("Internationalisation-")
    assert _inside(rect, 200, 200) and rect[2] - rect[0] > 150


def test_ocr_extract_previews_of_a_batch_stack_when_only_one_has_a_legend(pack):
    import torch

    from signs import render_sign

    sign, _ = render_sign(["Musée du LOUVRE"], "pedestrian")  # the pictogram is read and dropped
    batch = torch.from_numpy(np.stack([np.asarray(sign), np.full_like(np.asarray(sign), 230)]).astype(np.float32) / 255)
    text, _, _, preview = pack.NODE_CLASS_MAPPINGS["GlyphSR_OCRExtract"]().extract(batch, 0.5, "auto", 0)
    assert [r.words for r in text] == [["Musée", "du", "LOUVRE"], []]
    # the sign is under 200 px tall: a legend line per word and one for the dropped pictogram under it;
    # the blank page, with no legend, padded to the same size
    assert sign.height < 200
    assert preview.shape == (2, sign.height + 4 * 19 + 4, max(sign.width, 320), 3)
    assert torch.equal(preview[1, :sign.height, :sign.width], batch[1])
