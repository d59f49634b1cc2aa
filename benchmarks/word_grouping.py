"""OCR letter grouping on and off: how many OCR words are a lone letter of a longer printed word,
and word F1, on a synthetic corpus' LQ images.

A "split letter" is a one-character OCR word whose box centre lies inside the quad of a
ground-truth word of two or more characters (a fragment of that word: "M" of "MOBILE"). Its share
is split letters / OCR words. Word F1 is the project's standard rule (glyphsr_core.text.metrics:
lower-cased, punctuation removed, multiset match), micro-averaged. Both are printed for the OCR
reading (`read_text`) and for the words kept by the standard word filter (what the prompts get).
Target: split-letter share under 1 % with grouping on, word F1 not lower than with it off.

Run (the README's clean eval set, see docs/corpus-and-evaluation.md):
    python benchmarks/word_grouping.py --root data/eval100 [--scale 4] [--limit N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from glyphsr_core.data.corpus import load_corpus  # noqa: E402
from glyphsr_core.ocr import filter_words, read_text  # noqa: E402
from glyphsr_core.text.metrics import WordCounts, word_counts  # noqa: E402
from glyphsr_core.types import OcrResult  # noqa: E402


def inside(point: tuple[float, float], quad: np.ndarray) -> bool:
    """Whether `point` lies inside the convex quad (either winding)."""
    signs = []
    for i in range(4):
        (ax, ay), (bx, by) = quad[i], quad[(i + 1) % 4]
        signs.append(np.sign((bx - ax) * (point[1] - ay) - (by - ay) * (point[0] - ax)))
    signs = [s for s in signs if s != 0]
    return all(s > 0 for s in signs) or all(s < 0 for s in signs)


def split_letters(result: OcrResult, gt: list[tuple[str, np.ndarray]], size: tuple[int, int]) -> int:
    """OCR words of one character lying inside a longer ground-truth word (HQ pixel quads)."""
    count = 0
    for region in result.regions:
        if len(region.text.strip()) != 1 or region.center is None:
            continue
        centre = (region.center[0] * size[0], region.center[1] * size[1])
        count += any(len(text) > 1 and inside(centre, quad) for text, quad in gt)
    return count


class Tally:
    def __init__(self) -> None:
        self.words = self.split = 0
        self.counts = WordCounts()

    def add(self, result: OcrResult, gt: list[tuple[str, np.ndarray]], size: tuple[int, int]) -> None:
        self.words += len(result.regions)
        self.split += split_letters(result, gt, size)
        self.counts = self.counts + word_counts(result.words, [text for text, _ in gt])

    def line(self, name: str) -> str:
        share = self.split / self.words if self.words else 0.0
        c = self.counts
        return (f"{name:<34} {self.words:>6} {self.split:>6} {100 * share:>6.2f}% "
                f"{c.precision:>6.3f} {c.recall:>6.3f} {c.f1:>6.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True, help="a make-corpus folder (e.g. data/eval100)")
    parser.add_argument("--scale", type=int, default=4, help="which stored LQ images to read")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--min-confidence", type=float, default=0.5)
    args = parser.parse_args()
    samples = load_corpus(args.root)[: args.limit]
    tallies = {(group, filtered): Tally() for group in (False, True) for filtered in (False, True)}
    for sample in samples:
        if args.scale not in sample.lq_paths:
            raise SystemExit(f"{sample.id} has no x{args.scale} LQ image; give --scale one of {sorted(sample.lq_paths)}")
        lq = Image.open(sample.lq_paths[args.scale]).convert("RGB")
        gt = [(w.text, np.asarray(w.quad, dtype=np.float64)) for w in sample.words]
        for group in (False, True):
            result = read_text(lq, min_confidence=args.min_confidence, group_letters=group)
            tallies[(group, False)].add(result, gt, sample.size)
            tallies[(group, True)].add(filter_words(result)[0], gt, sample.size)
    print(f"{args.root} x{args.scale} LQ, {len(samples)} images, OCR scale auto, min confidence {args.min_confidence}")
    print(f"{'reading':<34} {'words':>6} {'split':>6} {'share':>7} {'P':>6} {'R':>6} {'F1':>6}")
    for (group, filtered), tally in tallies.items():
        name = f"grouping {'on ' if group else 'off'}, {'word filter standard' if filtered else 'OCR as read'}"
        print(tally.line(name))


if __name__ == "__main__":
    main()
