import numpy as np
import pytest

from glyphsr_core.text.glyphs import FontError, render_glyph_map, render_text_mask
from glyphsr_core.types import OcrResult, TextRegion, quad_from_box


def _inside(points: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Which (x, y) points lie inside a convex clockwise quad."""
    inside = np.ones(len(points), bool)
    for i in range(4):
        a, b = quad[i], quad[(i + 1) % 4]
        cross = (b[0] - a[0]) * (points[:, 1] - a[1]) - (b[1] - a[1]) * (points[:, 0] - a[0])
        inside &= cross >= -1.0
    return inside


def test_glyphs_fill_their_box_and_nothing_else():
    result = OcrResult(400, 200, (TextRegion("OPEN", 1.0, quad_from_box((0.1, 0.2, 0.6, 0.5))),))
    glyph = np.asarray(render_glyph_map(result, 400, 200))
    ys, xs = np.nonzero(glyph > 127)
    assert len(xs) > 500
    assert xs.min() >= 40 - 1 and xs.max() <= 240 + 1 and ys.min() >= 40 - 1 and ys.max() <= 100 + 1
    # stretched to the box: ink spans most of it
    assert xs.max() - xs.min() > 0.85 * 200 and ys.max() - ys.min() > 0.7 * 60


def test_rotated_quad_keeps_ink_inside_the_quad():
    angle = np.deg2rad(30)
    center = np.array([200.0, 200.0])
    corners = np.array([[-120, -25], [120, -25], [120, 25], [-120, 25]], dtype=float)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    quad = corners @ rotation.T + center
    region = TextRegion("ROTATED", 1.0, tuple((x / 400, y / 400) for x, y in quad))
    glyph = np.asarray(render_glyph_map(OcrResult(400, 400, (region,)), 400, 400))
    ys, xs = np.nonzero(glyph > 127)
    assert len(xs) > 500
    assert _inside(np.stack([xs, ys], 1).astype(float), quad).mean() > 0.99
    # the ink follows the 30 degree slope: its principal axis points along the quad's long edge
    cov = np.cov(np.stack([xs, ys]))
    direction = np.linalg.eigh(cov)[1][:, -1]
    assert abs(np.degrees(np.arctan2(direction[1], direction[0])) % 180 - 30) < 6


def test_words_without_position_and_empty_results_draw_nothing():
    result = OcrResult(64, 64, (TextRegion("FLOATING"),))
    assert np.asarray(render_glyph_map(result, 64, 64)).max() == 0
    assert np.asarray(render_text_mask(result, 64, 64, dilation=3)).max() == 0


def test_mask_covers_the_quad_and_dilation_grows_it():
    result = OcrResult(100, 100, (TextRegion("A", 1.0, quad_from_box((0.2, 0.2, 0.4, 0.3))),))
    plain = np.asarray(render_text_mask(result, 100, 100)) > 127
    ys, xs = np.nonzero(plain)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (20, 40, 20, 30)
    grown = np.asarray(render_text_mask(result, 100, 100, dilation=5)) > 127
    ys, xs = np.nonzero(grown)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (15, 45, 15, 35)
    assert grown[plain].all()
    assert not grown[5, 5] and not grown[15, 15]  # corners are rounded: a disk, not a square


def test_glyph_map_scales_with_the_output_size():
    result = OcrResult(50, 50, (TextRegion("HI", 1.0, quad_from_box((0.25, 0.25, 0.75, 0.75))),))
    small = np.asarray(render_glyph_map(result, 100, 100)) > 127
    large = np.asarray(render_glyph_map(result, 400, 400)) > 127
    assert abs(large.mean() - small.mean()) < 0.03


def test_unicode_text_renders_without_error():
    result = OcrResult(200, 100, (TextRegion("Ünïcødé 東京", 1.0, quad_from_box((0.1, 0.1, 0.9, 0.9))),))
    assert np.asarray(render_glyph_map(result, 200, 100)).max() == 255


def test_missing_font_and_bad_sizes_are_explained(tmp_path):
    result = OcrResult(10, 10, (TextRegion("A", 1.0, quad_from_box((0, 0, 1, 1))),))
    with pytest.raises(FontError, match="font file not found"):
        render_glyph_map(result, 10, 10, font_path=str(tmp_path / "nope.ttf"))
    bad = tmp_path / "bad.ttf"
    bad.write_bytes(b"not a font")
    with pytest.raises(FontError, match="cannot read font"):
        render_glyph_map(result, 10, 10, font_path=str(bad))
    with pytest.raises(ValueError, match="at least 1x1"):
        render_glyph_map(result, 0, 10)
    with pytest.raises(ValueError, match="dilation"):
        render_text_mask(result, 10, 10, dilation=-1)
