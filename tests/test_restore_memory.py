"""Text Restore and OCR on large images: memory that follows the tile, the same pixels and words as
the whole-image way, and tile progress."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import glyphsr_core.ocr.huge as huge
from glyphsr_core import method
from glyphsr_core.ocr import read_text
from glyphsr_core.restore import BUNDLED_PATH, load_restorer, restore, restore_pil
from glyphsr_core.restore.progress import TileProgressLog, announce, estimate_seconds
from glyphsr_core.restore.run import border_context, resize_bchw, smooth_areas_as_bicubic
from glyphsr_core.tiling.context import plan_tiles, run_tiled
from textimages import render_words

REPO = Path(__file__).resolve().parent.parent
LINES = [["OPEN", "DAILY", "COFFEE"], ["FRESH", "BREAD", "2024"], ["Market", "Street", "42"]]


@pytest.fixture(scope="module")
def bundled():
    return load_restorer(BUNDLED_PATH)


def _photo(width: int = 150, height: int = 100) -> Image.Image:
    """A gradient (smooth: bicubic there) with grain on one side and a word (detail: the net's)."""
    image, _ = render_words([["Sale", "42"]], size=(width, height), font_size=24)
    pixels = np.asarray(image, dtype=np.float32)
    ramp = np.linspace(0, 60, width, dtype=np.float32)[None, :, None]
    third = width // 3
    grain = np.random.default_rng(0).normal(0, 4, (height, third, 1)).astype(np.float32)
    pixels = pixels - ramp
    pixels[:, width - third:] += grain
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _whole_image_restore(model, image: Image.Image, scale: int, tile: int, margin: int) -> np.ndarray:
    """The previous way: the whole x4 output as floats, the blend over the whole image, then 8 bits."""
    tensor = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    out = run_tiled(model, tensor, 4, tile, margin, border=border_context(model, margin))
    out = smooth_areas_as_bicubic(tensor, out)
    if scale == 2:
        out = resize_bchw(out, (image.height * 2, image.width * 2), Image.Resampling.BOX)
    return np.round(out[0].permute(1, 2, 0).numpy() * 255.0).astype(np.uint8)


@pytest.mark.parametrize("scale", [4, 2])
def test_tiles_written_into_one_8bit_image_equal_the_whole_image_result(bundled, scale):
    image = _photo()
    tiled = np.asarray(restore_pil(bundled.model, bundled.scale, image, scale, tile=64, context_margin=32))
    assert len(plan_tiles(image.height, image.width, 64, 32)) >= 6
    # the same net tiles, the blend and rounding over the whole image: the very same bytes
    assert np.array_equal(tiled, _whole_image_restore(bundled.model, image, scale, 64, 32))
    # untiled: the net's 10-px receptive field fits in half of the 32-px margin, so only the convolutions'
    # float rounding on other tile sizes differs (1e-6): at most 1 level, in a handful of pixels
    untiled = _whole_image_restore(bundled.model, image, scale, 4096, 32)
    difference = np.abs(tiled.astype(int) - untiled)
    assert difference.max() <= 1 and (difference > 0).mean() < 1e-4
    # margin 0: the net's tiles differ, but the blend reads its own context, so it is still the whole-image blend
    tiled = np.asarray(restore_pil(bundled.model, bundled.scale, image, scale, tile=40, context_margin=0))
    assert np.array_equal(tiled, _whole_image_restore(bundled.model, image, scale, 40, 0))
    assert not np.array_equal(tiled, untiled)


def test_float_restore_equals_the_8bit_one_before_rounding(bundled):
    image = _photo(64, 48)
    tensor = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    floats = restore(bundled.model, bundled.scale, tensor, 4, tile=32, context_margin=16)
    as_bytes = np.round(floats[0].permute(1, 2, 0).numpy() * 255.0).astype(np.uint8)
    assert np.array_equal(as_bytes, np.asarray(restore_pil(bundled.model, bundled.scale, image, 4, tile=32,
                                                            context_margin=16)))


def test_progress_hook_counts_every_tile_up_to_the_total(bundled):
    image = _photo(80, 56)
    ticks: list[tuple[int, int]] = []
    method.text_restore(image, 4, tile=32, context_margin=16, on_tile=lambda done, total: ticks.append((done, total)))
    total = len(plan_tiles(56, 80, 32, 16))
    assert total > 4
    assert ticks == [(done, total) for done in range(1, total + 1)]


def test_progress_lines_and_estimate_are_logged(caplog):
    now = [0.0]
    log = TileProgressLog(clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="glyphsr_core.restore.progress"):
        log.begin(10)
        for done in range(1, 11):
            now[0] = done * 0.5
            log(done, 10)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "Text Restore: tile 0/10"
    # 0.5 s a tile, a line at most every 2 s: tiles 1, 5, 9 and the last
    assert [line.split(" (")[0] for line in lines[1:]] == [f"Text Restore: tile {n}/10" for n in (1, 5, 9, 10)]
    assert "about 0 s left" in lines[-1]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="glyphsr_core.restore.progress"):
        seconds = announce(6000, 4000, 4, 4, "cpu")
    assert seconds == estimate_seconds(6000, 4000, 4, 4, "cpu") > 60
    record = caplog.records[-1]
    assert record.levelno == logging.WARNING
    assert "24000x16000 (384 MP, 1.07 GiB as an 8-bit RGB image)" in record.getMessage()
    assert "estimate" in record.getMessage()
    assert estimate_seconds(1000, 1000, 8, 4, "cpu") == 4 * estimate_seconds(1000, 1000, 4, 4, "cpu")
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="glyphsr_core.restore.progress"):  # seconds of work: debug only
        announce(1000, 1000, 4, 4, "cpu")
        announce(120, 48, 4, 4, "cpu")
    assert [r.levelno for r in caplog.records] == [logging.INFO, logging.DEBUG]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="glyphsr_core.restore.progress"):  # no measured figure: size only
        assert announce(6000, 4000, 4, 4, "cuda:0") is None and announce(100, 100, 4, 4, None) is None
    assert [r.levelno for r in caplog.records] == [logging.INFO, logging.INFO]
    assert "about" not in caplog.records[0].getMessage()


@pytest.fixture(scope="module")
def sign():
    return render_words(LINES, size=(900, 330), font_size=40)


def _assert_same_words_and_boxes(normal, huge_result, image_size, tolerance_px: float):
    assert huge_result.words == normal.words
    assert (huge_result.width, huge_result.height) == image_size
    width, height = image_size
    for a, b in zip(normal.regions, huge_result.regions):
        worst = max(max(abs(p[0] - q[0]) * width, abs(p[1] - q[1]) * height) for p, q in zip(a.quad, b.quad))
        assert worst <= tolerance_px, (a.text, worst)


def test_huge_image_ocr_reads_the_same_words_with_full_resolution_boxes(sign, monkeypatch):
    image, drawn = sign
    normal = read_text(image)
    assert normal.words == [w for line in LINES for w in line]
    # the huge-image way on this small image: lines found on a copy reduced 2x, read from full-size crops
    monkeypatch.setattr(huge, "DETECT_PIXELS", image.width * image.height // 4)
    result = read_text(image, huge_pixels=1000)
    _assert_same_words_and_boxes(normal, result, image.size, tolerance_px=10.0)  # a quarter of the 40-px text
    by_word = {r.text: r for r in result.regions}
    for word, (x0, y0, x1, y1) in drawn:
        cx, cy = by_word[word].center
        assert x0 <= cx * image.width <= x1 and y0 <= cy * image.height <= y1, word
    as_floats = read_text(np.asarray(image, dtype=np.float32) / 255.0, huge_pixels=1000)
    _assert_same_words_and_boxes(result, as_floats, image.size, tolerance_px=0.5)


def test_reduced_copy_is_pillows_reduce_built_strip_by_strip(monkeypatch):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (103, 77, 3), dtype=np.uint8)
    monkeypatch.setattr(huge, "STRIP_ROWS", 4)  # strips of 12 rows at factor 3: many strips, a ragged last one
    reduced = huge.reduced_copy(Image.fromarray(pixels), 77, 103, 3)
    assert np.array_equal(reduced, np.asarray(Image.fromarray(pixels).reduce(3)))


def test_line_boxes_seen_by_two_tiles_merge_and_separate_lines_do_not():
    boxes = [(0, 100, 900, 140), (850, 102, 1500, 141), (0, 160, 700, 200), (2000, 100, 2300, 140)]
    assert huge.merge_line_boxes(boxes) == [(0, 100, 1500, 141), (0, 160, 700, 200), (2000, 100, 2300, 140)]


def test_a_long_line_of_small_text_is_read_in_segments_not_shrunk():
    parts = huge.line_segments((100, 500, 20100, 540))  # 20000 px of 40-px letters
    assert len(parts) == 12 and parts[0][0] == 100 and parts[-1][2] == 20100
    assert all(p[1:4:2] == (500, 540) and 2 * 3 * 40 + (p[2] - p[0]) <= huge.SHEET_SIDE for p in parts)
    assert huge.line_segments((0, 0, 1500, 40)) == [(0, 0, 1500, 40)]


PEAK_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    import numpy as np, torch
    from PIL import Image
    from glyphsr_core.restore.compact import CompactSR
    from glyphsr_core.restore.run import restore_pil
    torch.manual_seed(0)
    net = CompactSR(num_feat=8, num_conv=1).eval()  # small and fast: the memory under test is the pipeline's
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)).resize((800, 800))
    def status(key):
        return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(key))
    restore_pil(net, 4, image.crop((0, 0, 64, 64)), 4)  # libraries' one-time set-up is not the image's memory
    open("/proc/self/clear_refs", "w").write("5")  # the peak starts again from here
    before = status("VmRSS:")
    out = restore_pil(net, 4, image, 4, tile=128, context_margin=32)
    print(status("VmHWM:") - before, out.width * out.height * 3)
""")


def peak_of_restore(repo: Path) -> tuple[int, int]:
    """(peak bytes above the start, 8-bit output bytes) of a x4 restore of an 800x800 image, in a fresh process."""
    done = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(repo)], capture_output=True, text=True,
                          timeout=600, check=True)
    peak, output_bytes = map(int, done.stdout.split()[-2:])
    return peak, output_bytes


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the peak from /proc")
def test_peak_memory_follows_the_tile_not_the_output():
    """x4 of 800x800 (a 29 MiB 8-bit result): the run's memory peak stays under 4x the 8-bit output
    (Pillow keeps RGB as 4 bytes a pixel: 1.33x; the float input and the allocator's working set the
    rest: 2.8x measured). One float copy of the output alone is 4x; the whole-image way peaked at 19x."""
    peak, output_bytes = peak_of_restore(REPO)
    assert output_bytes == 3200 * 3200 * 3
    assert peak < 4 * output_bytes, f"peak {peak / 2**20:.0f} MiB for a {output_bytes / 2**20:.0f} MiB output"
