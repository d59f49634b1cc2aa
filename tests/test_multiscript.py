"""Every script: glyph maps of French, German, Russian, Greek, Chinese, Japanese and Korean signs.

The glyph map is the hint the text branch conditions on, so each word must be drawn as itself:
OCR'd back (black on white), it reads the word for the scripts the bundled OCR models read
(Latin with diacritics, Chinese, Japanese), and no script is drawn as missing-glyph boxes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageOps

from glyphsr_core.text.glyphs import render_glyph_map
from glyphsr_core.ocr import read_text
from glyphsr_core.text.prompts import build_prompts
from glyphsr_core.text.fonts import font_chain, render_text
from glyphsr_core.types import OcrResult, TextRegion, quad_from_box, results_to_json

SIGNS = {
    "fr": ["Musée", "Théâtre", "DÉCORATIFS", "Château", "Forêt", "Élysée", "garçon"],
    "de": ["Straße", "Größe", "Ärzte", "Übergang", "Fußgänger", "Öffnungszeiten"],
    "ru": ["Москва", "Улица", "Выход", "Метро", "Площадь"],
    "el": ["Αθήνα", "Οδός", "Έξοδος", "Μουσείο", "Πλατεία"],
    "zh": ["北京", "欢迎光临", "出口", "火车站", "地铁"],
    "ja": ["東京駅", "ひらがな", "カタカナ", "出口", "改札"],
    "ko": ["서울역", "출구", "지하철", "환영합니다"],
}
#: languages whose script the bundled RapidOCR models (PP-OCR Chinese/English) read
OCR_READS = ("fr", "de", "zh", "ja")
NEEDS_CJK_FONT = ("zh", "ja", "ko")


def _cjk_font_missing(lang: str) -> str | None:
    missing = font_chain(None).missing("".join(SIGNS[lang]))
    if missing:
        return (f"no font on this machine draws {''.join(missing)!r}; install fonts-wqy-microhei or "
                f"fonts-noto-cjk (.ci/run does)")
    return None


def _word_f1(predicted: list[str], truth: list[str]) -> float:
    remaining = list(truth)
    hits = 0
    for word in predicted:
        if word in remaining:
            remaining.remove(word)
            hits += 1
    if hits == 0:
        return 0.0
    precision, recall = hits / len(predicted), hits / len(truth)
    return 2 * precision * recall / (precision + recall)


def _glyph_map(words: list[str], row_height: int = 64, width: int = 900) -> Image.Image:
    """One word per row, each quad shaped like the word so the map is not stretched."""
    rows = len(words)
    height = rows * row_height * 2
    regions = []
    for index, word in enumerate(words):
        ink = render_text(word, 48)
        quad_w = row_height * ink.width / ink.height
        x0, y0 = 40, (2 * index + 0.5) * row_height
        regions.append(TextRegion(word, 1.0, quad_from_box((x0 / width, y0 / height, (x0 + quad_w) / width,
                                                             (y0 + row_height) / height))))
    return render_glyph_map(OcrResult(width, height, tuple(regions)), width, height)


@pytest.mark.parametrize("lang", sorted(SIGNS))
def test_every_character_has_its_own_glyph(lang):
    """No tofu: every distinct character is drawn by some font, and all of them differently."""
    if lang in NEEDS_CJK_FONT and (reason := _cjk_font_missing(lang)):
        pytest.skip(reason)
    chain = font_chain(None)
    text = "".join(SIGNS[lang])
    assert chain.missing(text) == []
    masks = {}
    for ch in sorted(set(text)):
        ink = np.asarray(render_text(ch, 40))
        assert ink.max() > 0, f"{ch!r} drew nothing"
        masks[ch] = (ink.shape, ink.tobytes())
    assert len(set(masks.values())) == len(masks), "two characters drew the same shape (a missing-glyph box)"


def test_latin_greek_and_cyrillic_need_no_system_font():
    """The pack's shipped Noto Sans subset covers them, so glyph maps match on every machine."""
    chain = font_chain(None)
    for lang in ("fr", "de", "ru", "el"):
        for word in SIGNS[lang]:
            (index, _), = chain.runs(word)
            assert chain.sources[index].name == "NotoSans-Regular-LatinGreekCyrillic", word


@pytest.mark.parametrize("lang", OCR_READS)
def test_glyph_map_ocrs_back_to_the_words(lang):
    if lang in NEEDS_CJK_FONT and (reason := _cjk_font_missing(lang)):
        pytest.skip(reason)
    glyph = _glyph_map(SIGNS[lang])
    read = read_text(ImageOps.invert(glyph.convert("RGB")))
    f1 = _word_f1(read.words, SIGNS[lang])
    assert f1 >= 0.9, f"{lang}: read {read.words}, expected {SIGNS[lang]} (F1 {f1:.2f})"


@pytest.mark.parametrize("lang", sorted(SIGNS))
def test_mixed_script_prompts_and_json_keep_exact_characters(lang):
    words = SIGNS[lang][:3]
    decomposed = [__import__("unicodedata").normalize("NFD", w) for w in words]
    regions = tuple(TextRegion(w, 0.9, quad_from_box((0.05, 0.1 + 0.3 * i, 0.4, 0.3 + 0.3 * i)))
                    for i, w in enumerate(decomposed))
    result = OcrResult(100, 100, regions)
    prompts = build_prompts("a street sign", result)
    assert prompts.text_positive.startswith(f'the text "{words[0]}" at the top left, "{words[1]}" at the left')
    assert list(prompts.words_used) == words
    data = json.loads(results_to_json([result]))
    assert [r["text"] for r in data[0]["regions"]] == words
    assert all(w in results_to_json([result]) for w in words), "JSON must hold the characters, not \\u escapes"
