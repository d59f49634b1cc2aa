"""OCR Extract speed and memory: median time per image at 256/512/1024/2048 px, and peak RSS.

Target: <= 1.0 s median for a 1024 px image on 2 CPU cores.
Run: python benchmarks/ocr_speed.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from glyphsr_core.ocr import get_engine, read_text  # noqa: E402

WORDS = "OPEN DAILY FRESH COFFEE BREAD SALE TODAY MARKET STREET 2024 $4.99 HOTEL EXIT".split()


def sign(side: int) -> Image.Image:
    """A side x side image with ~12 lines of words, text height ~4% of the side."""
    image = Image.new("RGB", (side, side), (232, 228, 215))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(8, side // 24))
    for row in range(12):
        words = " ".join(WORDS[(row + i) % len(WORDS)] for i in range(4))
        draw.text((side * 0.05, side * (0.04 + row * 0.08)), words, font=font, fill=(25, 25, 25))
    return image


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", default="256,512,1024,2048")
    args = parser.parse_args()
    start = time.perf_counter()
    get_engine()
    print(f"engine load: {time.perf_counter() - start:.2f} s")
    print(f"{'size':>6} {'median s':>9} {'min s':>7} {'words':>6} {'peak RSS MB':>12}")
    for side in (int(s) for s in args.sizes.split(",")):
        image = sign(side)
        read_text(image)  # warm-up at this size
        times, words = [], 0
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            words = len(read_text(image).regions)
            times.append(time.perf_counter() - t0)
        print(f"{side:>6} {statistics.median(times):>9.3f} {min(times):>7.3f} {words:>6} {peak_rss_mb():>12.0f}")


if __name__ == "__main__":
    main()
