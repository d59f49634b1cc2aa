"""`keep-words`: put a faithful upscale's words back into an image another tool upscaled.

    python -m glyphsr_core keep-words UPSCALED.png --lq LQ.png -o OUT.png
    python -m glyphsr_core keep-words UPSCALED.png --lq LQ.png -o OUT.png --reference lq --mode all-text

The reference (default: the bundled Text Restore of the LQ) is read with OCR, or `--text` gives the
words; every word the upscaled image reads differently is repaired with the least visible fix that
reads right, and every other pixel stays the upscaled image's. Writes the image (atomically) and
`<OUT stem>_report.json`, and prints which words were repaired and how.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable

from ..imageops import open_image_file
from ..restore.cli_support import add_restorer_arguments
from .analyze import add_word_filter_argument

#: flag value -> Keep Words mode (glyphsr_core.guard.KEEP_MODES; written out so --help loads no torch)
MODES = {"changed-words": "changed words", "all-text": "all text"}


def add_keep_mode_argument(parser: argparse.ArgumentParser, *names: str) -> None:
    """`--keep-mode`, shared with `upscale` (its Text Guard and `--upscaler`)."""
    parser.add_argument(*names, dest="keep_mode", choices=tuple(MODES), default="changed-words",
                        help="changed-words: repair only words the upscaled image reads differently; all-text: every "
                             "word box (default: %(default)s)")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("upscaled", type=Path, help="the image another upscaler made (any size of the LQ's picture)")
    parser.add_argument("--lq", type=Path, required=True, help="the low-quality image it was made from")
    parser.add_argument("-o", "--out", type=Path, required=True, help="output image path (.png)")
    parser.add_argument("--reference", default="restore", metavar="restore|lq|FILE",
                        help="whose words count: restore (Text Restore of the LQ, default), lq (the LQ enlarged "
                             "with bicubic) or an image file of the same picture")
    parser.add_argument("--text", default=None,
                        help="the words to keep, typed (plain lines, 'WORD @ x0,y0,x1,y1', or JSON; or a file); "
                             "default: OCR of the reference")
    parser.add_argument("--min-confidence", type=float, default=0.5, help="OCR confidence below which words are ignored")
    parser.add_argument("--color-fix", choices=("wavelet", "adain", "none"), default="wavelet",
                        help="how the reference's pixels take the upscaled image's colours (default wavelet)")
    add_keep_mode_argument(parser, "--mode", "--keep-mode")
    parser.add_argument("--dilation", type=int, default=8, metavar="PX",
                        help="how far a repair reaches beyond the word box, feathered over its outer half (default 8)")
    add_word_filter_argument(parser)
    add_restorer_arguments(parser)


def save_atomically(image: Any, path: Path) -> None:
    """Write to a temporary name beside `path`, then rename: an interrupt never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    image.save(partial, format=image.format or (path.suffix.lstrip(".").upper().replace("JPG", "JPEG") or "PNG"))
    partial.replace(path)


def keep_and_report(upscaled: Any, lq: Any, args: argparse.Namespace, source: str, dilation: int, *,
                    restorer: Any = None, echo: Callable[[str], None] = print) -> tuple[Any, dict]:
    """Reference, guidance words, repair: what `keep-words` and `upscale --upscaler` share (`restorer`:
    Text Restore already loaded, for a run over many images)."""
    from .. import method  # torch and OCR: not for --help
    from ..guard import format_guard_report
    from ..guard.headless import keep_words_pil

    reference, described = method.keep_words_reference(lq, upscaled.size, source, restorer=args.restorer,
                                                       tile=args.tile, context_margin=args.tile_overlap,
                                                       loaded=restorer)
    guidance = method.guidance_words(reference, args.text, min_confidence=args.min_confidence,
                                     word_filter=args.word_filter)
    kept, result = keep_words_pil(upscaled, reference, guidance, mode=MODES[args.keep_mode],
                                  dilation=dilation, min_confidence=args.min_confidence,
                                  color_fix=args.color_fix)
    share = result.report.changed_pixels / (kept.width * kept.height)
    echo(f"reference: {described}; guidance words: {' | '.join(r.text for r in guidance.regions) or '(none)'}")
    echo(f"keep words: {format_guard_report([result.report])}")
    echo(f"pixels changed: {share:.2%}")
    return kept, {"reference": described, "guidance": guidance.to_dict(), "keep_words": result.report.to_dict(),
                  "changed_share": round(share, 6)}


def report_path(out: Path) -> Path:
    """Where the report of the image `out` goes: `<stem>_report.json` beside it."""
    return out.with_name(f"{out.stem}_report.json")


def write_report(out: Path, report: dict) -> Path:
    path = report_path(out)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    partial.replace(path)
    return path


def run(args: argparse.Namespace) -> int:
    upscaled, lq = open_image_file(args.upscaled), open_image_file(args.lq)
    kept, report = keep_and_report(upscaled, lq, args, args.reference, args.dilation)
    report = {"upscaled": str(args.upscaled), "lq": str(args.lq), "output": str(args.out), **report}
    save_atomically(kept, args.out)
    report_path = write_report(args.out, report)
    print(f"{kept.width}x{kept.height} -> {args.out}")
    print(f"report: {report_path}")
    return 0
