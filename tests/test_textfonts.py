"""The font chain: which font draws what, per-character fallback, and missing characters logged."""

from __future__ import annotations

import logging
import unicodedata

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from glyphsr_core.text import fonts as textfonts
from glyphsr_core.text.glyphs import render_glyph_map
from glyphsr_core.text.fonts import PACK_FONTS_DIR, font_chain, render_text
from glyphsr_core.types import OcrResult, TextRegion, quad_from_box

SHIPPED = PACK_FONTS_DIR / "NotoSans-Regular-LatinGreekCyrillic.ttf"
UNASSIGNED = "\u0378"  # an unassigned code point: no font maps it (icon fonts do map private-use ones)


def test_pack_ships_one_small_ofl_font_with_its_license():
    assert SHIPPED.is_file() and SHIPPED.stat().st_size < 300_000
    assert "SIL OPEN FONT LICENSE Version 1.1" in (PACK_FONTS_DIR / "OFL.txt").read_text(encoding="utf-8")


def test_default_chain_is_builtin_then_shipped_font():
    names = [s.name for s in font_chain(None).sources]
    assert names[:2] == ["builtin", "NotoSans-Regular-LatinGreekCyrillic"]


def test_ascii_is_drawn_exactly_as_pillows_builtin_font_draws_it():
    """Glyph maps of ASCII words stay what existing corpora and trained text branches saw."""
    font = ImageFont.load_default(size=40)
    left, top, right, bottom = font.getbbox("OPEN 24/7")
    expected = Image.new("L", (right - left, bottom - top), 0)
    ImageDraw.Draw(expected).text((-left, -top), "OPEN 24/7", fill=255, font=font)
    assert np.array_equal(np.asarray(render_text("OPEN 24/7", 40)), np.asarray(expected))


def test_a_word_keeps_one_font_when_one_font_has_all_its_characters():
    chain = font_chain(None)
    (index, run), = chain.runs("Musée")
    assert run == "Musée" and chain.sources[index].name == "NotoSans-Regular-LatinGreekCyrillic"


def test_characters_no_font_has_are_left_blank_and_logged_once(caplog):
    textfonts._reported.discard(UNASSIGNED)
    with caplog.at_level(logging.WARNING, logger="glyphsr_core.text.fonts"):
        with_gap = np.asarray(render_text(f"AB{UNASSIGNED}CD", 40))
        render_text(f"x{UNASSIGNED}", 40)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "U+0378" in messages[0] and "AB" in messages[0]
    assert font_chain(None).missing(f"AB{UNASSIGNED}CD") == [UNASSIGNED]
    # the missing character is a blank column gap between "AB" and "CD", not a box
    ab, cd = np.asarray(render_text("AB", 40)), np.asarray(render_text("CD", 40))
    columns = with_gap.max(axis=0) > 0
    gap = int(np.argmax(~columns[ab.shape[1] - 2:])) + ab.shape[1] - 2
    assert not columns[gap:gap + 10].any()
    assert with_gap.shape[1] >= ab.shape[1] + cd.shape[1] + 10


def test_per_character_fallback_mixes_fonts_in_one_word():
    chain = font_chain(None)
    runs = chain.runs(f"Café{UNASSIGNED}")
    assert [text for _, text in runs] == ["Café", UNASSIGNED]
    assert runs[-1][0] is None


def test_font_path_wins_and_still_falls_back(tmp_path):
    chain = font_chain(str(SHIPPED))
    assert chain.sources[0].path == str(SHIPPED)
    shipped = np.asarray(render_text("OPEN", 40, str(SHIPPED)))
    builtin = np.asarray(render_text("OPEN", 40))
    assert shipped.shape != builtin.shape or not np.array_equal(shipped, builtin)


def test_decomposed_text_draws_like_composed():
    nfd = unicodedata.normalize("NFD", "Théâtre")
    assert np.array_equal(np.asarray(render_text(nfd, 40)), np.asarray(render_text("Théâtre", 40)))


def test_glyph_map_of_an_accented_word_differs_from_the_plain_word():
    """'DÉCORATIFS' used to be drawn with a box for É; now the É has its accent above the E."""
    def glyph(word):
        region = TextRegion(word, 1.0, quad_from_box((0.1, 0.3, 0.9, 0.7)))
        return np.asarray(render_glyph_map(OcrResult(400, 100, (region,)), 400, 100))
    accented, plain = glyph("DÉCORATIFS"), glyph("DECORATIFS")
    assert accented.max() == 255
    assert not np.array_equal(accented, plain)
