"""Text Fidelity Check cost: OCR of the output plus word pairing, and pairing alone for many words.

The check adds one OCR pass per output image to a workflow; pairing words is quadratic in the
number of words but stays far below the OCR time for real images.
Run: python benchmarks/fidelity_check.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from glyphsr_core.text.fidelity import compare_words  # noqa: E402
from glyphsr_core.ocr import get_engine, read_text  # noqa: E402
from glyphsr_core.types import OcrResult, TextRegion, quad_from_box  # noqa: E402
from ocr_speed import sign  # noqa: E402


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def grid_result(n_words: int, seed: int) -> OcrResult:
    """n_words random 5-letter words on a grid, as OCR would return them."""
    rng = random.Random(seed)
    side = int(n_words ** 0.5) + 1
    regions = []
    for i in range(n_words):
        x, y = (i % side) / side, (i // side) / side
        word = "".join(rng.choice("abcdefghij") for _ in range(5))
        regions.append(TextRegion(word, 0.9, quad_from_box((x, y, x + 0.8 / side, y + 0.8 / side))))
    return OcrResult(1024, 1024, tuple(regions))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    get_engine()
    for side in (512, 1024):
        image = sign(side)
        guidance = read_text(image)
        seconds = median_seconds(lambda: compare_words(guidance, read_text(image)), args.repeats)
        print(f"{side} px, {len(guidance.regions)} words: OCR + pairing {seconds:.3f} s (median of {args.repeats})")
    for n_words in (50, 200, 500):
        a, b = grid_result(n_words, 1), grid_result(n_words, 2)
        seconds = median_seconds(lambda: compare_words(a, b), args.repeats)
        print(f"pairing only, {n_words} words each side: {seconds * 1000:.1f} ms")


if __name__ == "__main__":
    main()
