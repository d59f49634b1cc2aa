"""OCR word hygiene: what the standard word filter drops and keeps, and why."""

from __future__ import annotations

import pytest

from glyphsr_core.ocr import filter_words
from glyphsr_core.ocr.engine import DetectedWord
from glyphsr_core.ocr.hygiene import SINGLE_CHAR_MIN_CONFIDENCE
from glyphsr_core.ocr.rapid import _join_cjk
from glyphsr_core.ocr.scripts import char_script, dominant_script, is_cjk_word
from glyphsr_core.types import OcrResult, TextRegion, quad_from_box


def _row(*words: tuple[str, float], y: float = 0.4) -> list[TextRegion]:
    return [TextRegion(text, conf, quad_from_box((0.05 + 0.15 * i, y, 0.15 + 0.15 * i, y + 0.1)))
            for i, (text, conf) in enumerate(words)]


def _filter(regions, policy="standard"):
    kept, dropped = filter_words(OcrResult(100, 100, tuple(regions)), policy)
    return kept.words, {d.region.text: d.reason for d in dropped}


@pytest.mark.parametrize("ch, script", [("a", "Latin"), ("É", "Latin"), ("Ж", "Cyrillic"), ("Ω", "Greek"),
                                        ("穴", "CJK"), ("ひ", "CJK"), ("カ", "CJK"), ("한", "Hangul"),
                                        ("Ａ", "Latin"), ("º", "Other"), ("7", None), ("-", None)])
def test_char_script(ch, script):
    assert char_script(ch) == script


def test_dominant_script_and_cjk_words():
    assert dominant_script(["Musée", "du", "穴"]) == "Latin"
    assert dominant_script(["2024", "!"]) is None
    assert is_cjk_word("東京駅") and is_cjk_word("3号") and not is_cjk_word("A座") and not is_cjk_word("42")


def test_pictogram_read_as_a_han_character_among_french_words_is_dropped():
    kept, dropped = _filter(_row(("穴", 0.93), ("Musée", 1.0), ("du", 1.0), ("LOUVRE", 1.0)))
    assert kept == ["Musée", "du", "LOUVRE"]
    assert dropped == {"穴": "lone CJK character among Latin words"}


def test_off_keeps_every_token():
    regions = _row(("穴", 0.93), ("→", 0.99), ("e", 0.4), ("Musée", 1.0))
    kept, dropped = _filter(regions, "off")
    assert kept == ["穴", "→", "e", "Musée"] and dropped == {}


def test_symbols_and_punctuation_only_tokens_are_dropped_words_with_them_kept():
    kept, dropped = _filter(_row(("→", 0.99), ("-", 0.95), ("PALAIS-ROYAL", 1.0), ("$4.99", 0.98), ("24/7", 0.97)))
    assert kept == ["PALAIS-ROYAL", "$4.99", "24/7"]
    assert set(dropped) == {"→", "-"} and all(r == "symbols or punctuation only" for r in dropped.values())


def test_one_character_tokens_are_dropped_only_below_the_confidence_threshold():
    low = round(SINGLE_CHAR_MIN_CONFIDENCE - 0.1, 2)
    kept, dropped = _filter(_row(("u", low), ("A", 0.95), ("7", 0.99), ("LOUVRE", 1.0)))
    assert kept == ["A", "7", "LOUVRE"]
    assert dropped == {"u": f"one character read with confidence {low:.2f} < {SINGLE_CHAR_MIN_CONFIDENCE}"}


def test_real_single_characters_of_the_dominant_script_are_kept():
    # a Chinese sign: one-character words among Chinese words; a lone Latin label in CJK text
    kept, dropped = _filter(_row(("出口", 1.0), ("东", 0.99), ("B", 0.97), ("火车站", 1.0)))
    assert kept == ["出口", "东", "B", "火车站"] and dropped == {}


def test_the_row_decides_before_the_image():
    # a Japanese row under a Latin row: its lone kanji is among CJK words, so it is kept
    regions = _row(("EXIT", 1.0), ("Central", 1.0), y=0.1) + _row(("出口", 1.0), ("南", 0.99), y=0.6)
    kept, dropped = _filter(regions)
    assert kept == ["EXIT", "Central", "出口", "南"] and dropped == {}


def test_two_pictograms_do_not_vouch_for_each_other():
    regions = _row(("穴", 0.95), ("Gare", 1.0), y=0.1) + _row(("大", 0.96), ("Louvre", 1.0), y=0.6)
    kept, dropped = _filter(regions)
    assert kept == ["Gare", "Louvre"] and set(dropped) == {"穴", "大"}


def test_a_lone_character_alone_in_the_image_is_kept():
    kept, dropped = _filter(_row(("入", 0.95)))
    assert kept == ["入"] and dropped == {}


def test_unknown_policy_is_explained():
    with pytest.raises(ValueError, match="word_filter must be one of standard, off; got 'strict'"):
        filter_words(OcrResult(1, 1, ()), "strict")


def test_dropped_words_serialise_with_their_reason():
    _, dropped = filter_words(OcrResult(100, 100, tuple(_row(("→", 0.9), ("OPEN", 1.0)))))
    data = dropped[0].to_dict()
    assert data["text"] == "→" and data["reason"] == "symbols or punctuation only" and len(data["quad"]) == 4


def _char(text, x, line=0):
    return DetectedWord(text, 0.99, [(x, 0), (x + 10, 0), (x + 10, 10), (x, 10)], line)


def test_cjk_characters_boxed_one_by_one_are_joined_into_words():
    words = [_char("東", 0), _char("京", 10), _char("駅", 20), _char("EXIT", 40)]
    joined = _join_cjk(words, "東京駅 EXIT")
    assert [w.text for w in joined] == ["東京駅", "EXIT"]
    assert joined[0].quad == [(0, 0), (30, 0), (30, 10), (0, 10)]


def test_cjk_characters_separated_by_a_space_stay_apart():
    joined = _join_cjk([_char("出", 0), _char("口", 10), _char("南", 30)], "出口 南")
    assert [w.text for w in joined] == ["出口", "南"]
