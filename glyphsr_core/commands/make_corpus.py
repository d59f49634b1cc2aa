"""`make-corpus`: write a synthetic text corpus (HQ, LQ per scale, mask, glyph map, metadata.jsonl)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from ..data.corpus import CorpusConfig, list_images, make_corpus
from ..data.corpus_fonts import discover_fonts
from ..errors import InputNotFoundError, InvalidInputError

logger = logging.getLogger(__name__)


def _scales(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--scales must be whole numbers separated by commas (e.g. 4,8), got {text!r}") from exc
    if not values:
        raise argparse.ArgumentTypeError("--scales needs at least one scale")
    return values


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="output folder (created; metadata.jsonl is replaced)")
    parser.add_argument("--n", type=int, default=1000, help="number of samples")
    parser.add_argument("--size", type=int, default=512, help="side of the square HQ images in pixels")
    parser.add_argument("--scales", type=_scales, default=(4, 8), help="LQ scales, comma separated (default 4,8)")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed: same seed, same corpus")
    parser.add_argument("--degradation", default="realistic", choices=("realistic", "bicubic", "paper"),
                        help="how LQ images are made (see glyphsr_core/data/degrade.py)")
    parser.add_argument("--backgrounds", type=Path, default=None, help="folder of photos to crop backgrounds from")
    parser.add_argument("--fonts", type=Path, default=None, help="folder of extra .ttf/.otf/.ttc fonts")
    parser.add_argument("--no-system-fonts", action="store_true",
                        help="use only Pillow's bundled font and --fonts (corpus independent of the machine's fonts)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="worker processes")


def run(args: argparse.Namespace) -> int:
    fonts, rejected = discover_fonts(args.fonts, system=not args.no_system_fonts)
    for path, reason in rejected:
        logger.debug("font skipped: %s (%s)", path, reason)
    if rejected:
        print(f"fonts: {len(fonts)} usable, {len(rejected)} skipped (e.g. {rejected[0][0]}: {rejected[0][1]}; -v lists all)")
    else:
        print(f"fonts: {len(fonts)} usable ({', '.join(f.name for f in fonts[:6])}{' ...' if len(fonts) > 6 else ''})")
    backgrounds: tuple[Path, ...] = ()
    if args.backgrounds is not None:
        if not args.backgrounds.is_dir():
            raise InputNotFoundError(f"backgrounds folder not found: {args.backgrounds}")
        backgrounds = tuple(list_images(args.backgrounds))
        if not backgrounds:
            raise InvalidInputError(f"no images (png/jpg/webp/bmp/tif) in {args.backgrounds}")
        print(f"backgrounds: {len(backgrounds)} photos")
    config = CorpusConfig(out=args.out, size=args.size, scales=tuple(args.scales), seed=args.seed,
                          mode=args.degradation, fonts=tuple(fonts), backgrounds=backgrounds)
    step = max(1, args.n // 10)

    def progress(done: int, total: int) -> None:
        if done % step == 0 or done == total:
            print(f"  {done}/{total}", flush=True)

    report = make_corpus(config, args.n, workers=args.workers, progress=progress)
    print(f"wrote {report.samples} samples ({report.words} words) to {args.out} in {report.seconds:.1f} s "
          f"({report.samples / max(report.seconds, 1e-9):.2f} samples/s, {max(1, args.workers)} workers)")
    if report.problems:
        unique = sorted(set(report.problems))
        print(f"problems: {len(report.problems)} (procedural backgrounds used instead), e.g.:")
        for line in unique[:5]:
            print(f"  {line}")
    return 0
