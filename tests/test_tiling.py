"""Tile grid, blend weights, seam measure and per-tile prompts (glyphsr_core, no ComfyUI)."""

from __future__ import annotations

import pytest
import torch

from glyphsr_core.text.prompts import PromptTemplates
from glyphsr_core.tiling.prompts import assign_regions, build_tile_prompts
from glyphsr_core.tiling.grid import (TilingError, axis_starts, blend, blend_weights, border_lines, seam_report,
                                 step_excess, tile_grid)
from glyphsr_core.types import OcrResult, TextRegion, quad_from_box


@pytest.mark.parametrize("length, tile, overlap, multiple, expected", [
    (64, 64, 8, 1, [0]),
    (50, 64, 8, 1, [0]),
    (128, 64, 0, 1, [0, 64]),
    (128, 64, 16, 1, [0, 32, 64]),  # 2 tiles would share 0 px < 16: three, evenly spread
    (120, 64, 8, 1, [0, 56]),
    (200, 64, 16, 8, [0, 48, 88, 136]),
])
def test_axis_starts(length, tile, overlap, multiple, expected):
    starts = axis_starts(length, tile, overlap, multiple)
    assert starts == expected
    assert starts[-1] + min(tile, length) == length
    for a, b in zip(starts, starts[1:]):
        assert a + tile - b >= overlap  # at least the asked overlap between neighbours


def test_aligned_starts_are_multiples_except_the_last():
    starts = axis_starts(300, 64, 16, 8)
    assert all(s % 8 == 0 for s in starts[:-1])
    assert starts[-1] == 300 - 64


@pytest.mark.parametrize("kwargs, message", [
    ({"tile": 0, "blend_overlap": 0}, "tile size"),
    ({"tile": 32, "blend_overlap": -1}, "overlap must be >= 0"),
    ({"tile": 32, "blend_overlap": 32}, "smaller than the tile"),
])
def test_bad_tiling_settings_name_the_input(kwargs, message):
    with pytest.raises(TilingError, match=message):
        axis_starts(100, **kwargs)


def test_grid_tiles_boxes_and_batches():
    grid = tile_grid(96, 160, 64, 16)
    assert grid.shape == (2, 3)
    tiles = grid.tiles
    assert [(t.y0, t.x0) for t in tiles] == [(0, 0), (0, 48), (0, 96), (32, 0), (32, 48), (32, 96)]
    assert all((t.height, t.width) == (64, 64) for t in tiles)
    assert grid.boxes()[4] == pytest.approx((48 / 160, 32 / 96, 112 / 160, 1.0))
    assert [[t.index for t in b] for b in grid.batches(4)] == [[0, 1, 2, 3], [4, 5]]
    assert not grid.covers_whole()
    assert tile_grid(40, 56, 64, 8).covers_whole()
    with pytest.raises(TilingError, match="batch size"):
        grid.batches(0)


@pytest.mark.parametrize("h, w, tile, overlap", [(96, 160, 64, 16), (128, 128, 64, 0), (100, 70, 48, 40),
                                                 (64, 64, 64, 8)])
def test_weights_sum_to_one_everywhere(h, w, tile, overlap):
    grid = tile_grid(h, w, tile, overlap)
    weights = blend_weights(grid)
    total = blend(grid, weights, [torch.ones(1, 1, t.height, t.width) for t in grid.tiles])
    assert torch.allclose(total, torch.ones(1, 1, h, w), atol=1e-6)
    assert all(float(wt.min()) > 0 for wt in weights)


def test_one_tile_weight_is_exactly_one_and_blend_is_identity():
    grid = tile_grid(40, 56, 64, 8)
    (weight,) = blend_weights(grid)
    assert torch.equal(weight, torch.ones(1, 1, 40, 56))
    x = torch.randn(2, 4, 40, 56)
    assert torch.equal(blend(grid, [weight], [x]), x)


def test_weights_are_one_inside_and_ramp_smoothly_across_the_band():
    grid = tile_grid(64, 112, 64, 16)  # two tiles side by side sharing columns 48..63
    left, right = blend_weights(grid)
    assert torch.equal(left[0, 0, :, :48], torch.ones(64, 48))  # no neighbour there: weight 1
    band = left[0, 0, 0, 48:]
    assert torch.all(band[1:] < band[:-1])  # falls monotonically
    assert float(band[0]) == pytest.approx(1 - float(torch.sin(torch.tensor(torch.pi / 64)) ** 2), abs=1e-6)
    assert float(band.diff().abs().max()) < 0.1  # no jump: 16 px ramp, largest step ~ pi/32
    assert torch.allclose(band + right[0, 0, 0, :16], torch.ones(16), atol=1e-6)


def test_blend_places_predictions_and_rejects_a_wrong_count():
    grid = tile_grid(8, 16, 8, 0)
    weights = blend_weights(grid)
    out = blend(grid, weights, [torch.full((1, 1, 8, 8), 1.0), torch.full((1, 1, 8, 8), 2.0)])
    assert torch.equal(out[..., :8], torch.full((1, 1, 8, 8), 1.0))
    assert torch.equal(out[..., 8:], torch.full((1, 1, 8, 8), 2.0))
    with pytest.raises(TilingError, match="1 tile prediction"):
        blend(grid, weights, [torch.ones(1, 1, 8, 8)])


def test_step_excess_sees_a_seam_and_not_a_gradient():
    ramp = torch.linspace(0, 1, 64).repeat(1, 1, 32, 1)  # smooth horizontal gradient
    assert step_excess(ramp, [16, 32, 48], -1) < 1e-6
    seam = ramp.clone()
    seam[..., 32:] += 0.25
    assert step_excess(seam, [32], -1) == pytest.approx(0.25, abs=1e-6)
    assert step_excess(seam, [16], -1) < 1e-6


def test_seam_report_separates_borders_from_the_rest():
    grid = tile_grid(32, 64, 32, 0)
    assert border_lines(grid, scale=2) == ([], [64])
    image = torch.linspace(0, 1, 128).repeat(1, 1, 64, 1)
    image[..., 64:] -= 0.1
    report = seam_report(image, grid, scale=2)
    assert report["at_borders"] == pytest.approx(0.1, abs=1e-6)
    assert report["elsewhere"] < 1e-6


def test_border_lines_cover_the_whole_shared_band():
    grid = tile_grid(16, 24, 16, 8)  # columns: tiles at 0 and 8, sharing columns 8..15
    assert grid.cols == (0, 8)
    assert border_lines(grid) == ([], list(range(8, 17)))
    image = torch.linspace(0, 1, 24).repeat(1, 1, 16, 1)
    image[..., 12:] += 0.05  # a cut in the middle of the band, not at a tile edge
    assert seam_report(image, grid)["at_borders"] == pytest.approx(0.05, abs=1e-6)


# ------------------------------------------------------------------ per-tile prompts

def _word(text, x0, y0, x1, y1):
    return TextRegion(text, 0.9, quad_from_box((x0, y0, x1, y1)))


TEMPLATES = PromptTemplates(scene_suffix="SS", scene_negative="SN", text_suffix="TS", text_negative="TN")
LEFT, RIGHT = (0.0, 0.0, 0.6, 1.0), (0.4, 0.0, 1.0, 1.0)  # two tiles sharing 0.4..0.6


def test_words_go_to_the_tiles_that_hold_them_with_tile_relative_quads():
    result = OcrResult(100, 100, (_word("OPEN", 0.05, 0.05, 0.25, 0.15), _word("EXIT", 0.75, 0.8, 0.95, 0.9),
                                  _word("MID", 0.45, 0.45, 0.55, 0.55)))
    left, right = assign_regions(result, [LEFT, RIGHT])
    assert [r.text for r in left] == ["OPEN", "MID"]  # MID lies wholly in the shared band: both tiles
    assert [r.text for r in right] == ["EXIT", "MID"]
    assert left[0].box == pytest.approx((0.05 / 0.6, 0.05, 0.25 / 0.6, 0.15))
    assert right[0].box == pytest.approx((0.35 / 0.6, 0.8, 0.55 / 0.6, 0.9))


def test_a_cut_word_goes_to_every_tile_holding_enough_of_it():
    tiles = [(0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 1.0, 1.0)]  # no overlap: a cut at 0.5
    even = OcrResult(10, 10, (_word("HALF", 0.4, 0.4, 0.6, 0.5),))
    assert [[r.text for r in t] for t in assign_regions(even, tiles)] == [["HALF"], ["HALF"]]
    mostly_right = OcrResult(10, 10, (_word("R", 0.45, 0.4, 0.65, 0.5),))  # 25 % left, 75 % right
    assert [[r.text for r in t] for t in assign_regions(mostly_right, tiles)] == [[], ["R"]]
    assert [[r.text for r in t] for t in assign_regions(mostly_right, tiles, min_inside=0.2)] == [["R"], ["R"]]
    # the left tile's copy is clipped to that tile's own 0..1 frame
    clipped = assign_regions(mostly_right, tiles, min_inside=0.2)[0][0]
    assert clipped.box == pytest.approx((0.9, 0.4, 1.0, 0.5))


def test_a_word_cut_three_ways_goes_to_its_largest_part():
    tiles = [(0.0, 0.0, 0.4, 1.0), (0.4, 0.0, 0.6, 1.0), (0.6, 0.0, 1.0, 1.0)]
    result = OcrResult(10, 10, (_word("LONGWORD", 0.3, 0.4, 0.9, 0.5),))  # 1/6, 2/6, 3/6: none >= 0.6
    per_tile = assign_regions(result, tiles, min_inside=0.6)
    assert [[r.text for r in t] for t in per_tile] == [[], [], ["LONGWORD"]]


def test_words_without_position_go_everywhere_and_bad_inputs_say_which():
    result = OcrResult(10, 10, (TextRegion("TYPED"),))
    assert [[r.text for r in t] for t in assign_regions(result, [LEFT, RIGHT])] == [["TYPED"], ["TYPED"]]
    with pytest.raises(ValueError, match="tile 1 box"):
        assign_regions(result, [LEFT, (0.5, 0.0, 0.4, 1.0)])
    with pytest.raises(ValueError, match="min_inside"):
        assign_regions(result, [LEFT], min_inside=0.0)


def test_tile_prompts_name_only_their_words_located_in_the_tile():
    result = OcrResult(100, 100, (_word("OPEN", 0.05, 0.05, 0.25, 0.15), _word("EXIT", 0.75, 0.8, 0.95, 0.9)))
    left, right = build_tile_prompts("a shop", result, [LEFT, RIGHT], templates=TEMPLATES)
    assert left.text_positive == 'the text "OPEN" at the top left, a shop, TS'
    # EXIT is at x 0.85 of the image but at 0.75 of the right tile, y 0.85: bottom right of the tile
    assert right.text_positive == 'the text "EXIT" at the bottom right, a shop, TS'
    assert left.scene_positive == right.scene_positive == "a shop, SS"
    assert (left.words_used, right.words_used) == (("OPEN",), ("EXIT",))
    empty = build_tile_prompts("a shop", OcrResult(1, 1, ()), [LEFT], templates=TEMPLATES)[0]
    assert empty.text_positive == "a shop, SS, TS"


def test_tile_prompts_cap_words_per_tile():
    words = tuple(_word(f"W{i}", 0.01 * i, 0.1, 0.01 * i + 0.005, 0.12) for i in range(10))
    (prompts,) = build_tile_prompts("c", OcrResult(10, 10, words), [(0.0, 0.0, 1.0, 1.0)], templates=TEMPLATES,
                                    max_words=3)
    assert prompts.words_used == ("W0", "W1", "W2") and len(prompts.words_dropped) == 7


@pytest.mark.parametrize("length, tile, overlap, multiple", [(37, 10, 7, 8), (1000, 72, 60, 8), (65, 64, 1, 8),
                                                             (513, 128, 32, 8)])
def test_alignment_gives_way_rather_than_break_the_overlap(length, tile, overlap, multiple):
    starts = axis_starts(length, tile, overlap, multiple)
    assert starts[0] == 0 and starts[-1] == length - tile
    assert all(0 < b - a <= tile - overlap for a, b in zip(starts, starts[1:]))


# ------------------------------------------------------------------ crops and stacks

from glyphsr_core.tiling.tensors import crop_tiles, repeat_rows, stack_context  # noqa: E402


def test_crop_tiles_stacks_tile_major_with_rows_per_tile():
    grid = tile_grid(4, 8, 4, 0)  # two 4x4 latent tiles
    full = torch.arange(2 * 1 * 32 * 64, dtype=torch.float32).reshape(2, 1, 32, 64)  # 2 images, scale 8
    crops = crop_tiles(full, grid.tiles, 8, rows=2)
    assert crops.shape == (4, 1, 32, 32)
    assert torch.equal(crops[0], full[0, :, :, :32]) and torch.equal(crops[1], full[1, :, :, :32])
    assert torch.equal(crops[2], full[0, :, :, 32:]) and torch.equal(crops[3], full[1, :, :, 32:])
    one = crop_tiles(full[:1], grid.tiles, 8, rows=3)  # a single hint serves every image
    assert one.shape == (6, 1, 32, 32) and torch.equal(one[5], full[0, :, :, 32:])
    with pytest.raises(ValueError, match="smaller than tile 1"):
        crop_tiles(full[..., :40], grid.tiles, 8, rows=1)


def test_repeat_rows_and_stack_context():
    assert torch.equal(repeat_rows(torch.tensor([[1.0], [2.0]]), 4), torch.tensor([[1.0], [2.0], [1.0], [2.0]]))
    a, b = torch.full((1, 77, 4), 1.0), torch.full((1, 154, 4), 2.0)
    stacked = stack_context([a, b], rows=2)
    assert stacked.shape == (4, 154, 4)
    assert torch.equal(stacked[1], torch.full((154, 4), 1.0)) and torch.equal(stacked[2], torch.full((154, 4), 2.0))
    with pytest.raises(ValueError, match="same dim"):
        stack_context([a, torch.zeros(1, 77, 5)], rows=1)
