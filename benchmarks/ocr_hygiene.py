"""OCR word hygiene: token precision and recall with the word filter off and on (standard).

Two sets, both drawn here, nothing downloaded:
- the synthetic corpus (`python -m glyphsr_core make-corpus`, small n, the pack's fonts only), read
  on the HQ images and on the x4 LQ images (enlarged by OCR's `auto` scale);
- street signs with pictograms (walking figure, arrow, bicycle, museum) beside French, German and
  English words, straight and tilted 4 degrees, clean and down-sampled x3; then the same with
  Chinese and Japanese words (when a CJK font is installed), where one-character words must stay.

A token counts as right when it equals a ground-truth word (NFC, case-folded; each ground-truth
word matches once). Precision = right / tokens read, recall = right / ground-truth words.
Target: precision up, recall not down.

Run: python benchmarks/ocr_hygiene.py [--n 24] [--keep DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import unicodedata
from collections import Counter
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from glyphsr_core.data.corpus import load_corpus  # noqa: E402
from glyphsr_core.ocr import filter_words, read_text  # noqa: E402
from glyphsr_core.text.fonts import font_chain  # noqa: E402
from signs import PICTOGRAMS, render_sign, tilt  # noqa: E402

SIGN_TEXTS = [
    ["Musée du LOUVRE"], ["LES ARTS DÉCORATIFS"], ["Théâtre du", "PALAIS-ROYAL"], ["Gare de Lyon"],
    ["Hôtel de Ville"], ["Fußgängerzone"], ["Hauptbahnhof", "Ausgang"], ["Öffnungszeiten"],
    ["City Museum"], ["EXIT", "Platform 2"], ["Jardin des Plantes"], ["Rathaus"],
]
#: Chinese and Japanese signs (one-character words among CJK words must be kept); need a CJK font
CJK_SIGN_TEXTS = [["出口 EXIT"], ["东 出口"], ["東京駅", "南口"], ["地铁 站"]]
POLICIES = ("off", "standard")


class Tally:
    def __init__(self) -> None:
        self.right = self.read = self.truth = 0
        self.dropped: Counter = Counter()

    def add(self, tokens: list[str], truth: list[str]) -> None:
        key = lambda w: unicodedata.normalize("NFC", w).casefold()  # noqa: E731
        pred, gt = Counter(map(key, tokens)), Counter(map(key, truth))
        self.right += sum((pred & gt).values())
        self.read += len(tokens)
        self.truth += len(truth)

    def line(self) -> str:
        precision = self.right / self.read if self.read else 1.0
        recall = self.right / self.truth if self.truth else 1.0
        counts = f"{self.right} right of {self.read} read, {self.truth} true"
        return f"precision {precision:.3f}  recall {recall:.3f}  ({counts})"


def measure(items, label: str) -> None:
    """items: (image, ground-truth words) pairs; prints one line per policy and the dropped tokens."""
    tallies = {policy: Tally() for policy in POLICIES}
    wrongly_dropped: Counter = Counter()
    still_wrong: Counter = Counter()
    for image, truth in items:
        raw = read_text(image)
        for policy in POLICIES:
            kept, dropped = filter_words(raw, policy)
            tallies[policy].add(kept.words, truth)
            for item in dropped:
                tallies[policy].dropped[item.reason.split(" read with")[0].split(" among")[0]] += 1
                if item.region.text.casefold() in {w.casefold() for w in truth}:
                    wrongly_dropped[item.region.text] += 1
            if policy == "standard":
                still_wrong.update(w for w in kept.words if w.casefold() not in {t.casefold() for t in truth})
    print(f"\n{label}: {len(items)} images")
    for policy in POLICIES:
        print(f"  word filter {policy:<8} {tallies[policy].line()}")
    reasons = ", ".join(f"{reason}: {count}" for reason, count in tallies["standard"].dropped.most_common())
    print(f"  dropped by standard: {reasons or 'nothing'}")
    print(f"  true words dropped: {sum(wrongly_dropped.values())} {dict(wrongly_dropped) or ''}")
    print(f"  wrong tokens standard keeps: {', '.join(repr(w) for w, _ in still_wrong.most_common(12)) or 'none'}")


def corpus_items(n: int, folder: Path):
    command = [sys.executable, "-m", "glyphsr_core", "make-corpus", "--out", str(folder), "--n", str(n),
               "--size", "512", "--scales", "4", "--seed", "0", "--no-system-fonts", "--fonts", str(REPO / "fonts"),
               "--workers", "1"]
    subprocess.run(command, check=True, cwd=REPO, capture_output=True)
    samples = load_corpus(folder)
    hq = [(Image.open(s.hq_path).convert("RGB"), [w.text for w in s.words]) for s in samples]
    lq = [(Image.open(s.lq_paths[4]).convert("RGB"), [w.text for w in s.words]) for s in samples]
    return hq, lq


def sign_items(texts: list[list[str]]):
    items = []
    for index, lines in enumerate(texts):
        truth = " ".join(lines).split()
        for variant in range(4):
            kind = PICTOGRAMS[(index + variant) % len(PICTOGRAMS)]
            image, _ = render_sign(lines, kind)
            image = tilt(image, 4.0 if variant % 2 else 0.0)
            if variant >= 2:  # a low-resolution photo of it
                image = image.resize((image.width // 3, image.height // 3), Image.Resampling.BICUBIC)
            items.append((image, truth))
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=24, help="corpus samples (0: signs only)")
    parser.add_argument("--keep", type=Path, default=None, help="write the corpus here instead of a temp folder")
    args = parser.parse_args()
    if args.n > 0:
        with tempfile.TemporaryDirectory() as tmp:
            hq, lq = corpus_items(args.n, args.keep or Path(tmp) / "corpus")
            measure(hq, "synthetic corpus, HQ")
            measure(lq, "synthetic corpus, LQ x4")
    measure(sign_items(SIGN_TEXTS), "signs with pictograms (4 kinds; straight/tilted; clean/x3 down)")
    missing = font_chain(None).missing("".join(w for lines in CJK_SIGN_TEXTS for w in lines))
    if missing:
        print(f"\nCJK signs skipped: no font draws {''.join(missing)!r} (apt-get install fonts-wqy-microhei)")
    else:
        measure(sign_items(CJK_SIGN_TEXTS), "Chinese/Japanese signs with pictograms")


if __name__ == "__main__":
    main()
