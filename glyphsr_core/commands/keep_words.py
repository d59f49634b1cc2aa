"""`keep-words`: put a faithful upscale's words back into an image another tool upscaled.

    python -m glyphsr_core keep-words UPSCALED.png --lq LQ.png -o OUT.png
    python -m glyphsr_core keep-words UPSCALED.png --lq LQ.png -o OUT.png --reference lq --mode all-text

The reference (default: the bundled Text Restore of the LQ) is read with OCR, or `--text` gives the
words; every word the upscaled image reads differently is repaired with the least visible fix that
reads right, and every other pixel stays the upscaled image's. Writes the image (atomically) and
`<OUT stem>_report.json`, and prints which words were repaired and how.

    python -m glyphsr_core keep-words UPSCALED_DIR --lq LQ_DIR -o OUT_DIR    # many (glyphsr_core.batch)

With several images, a folder or a glob pattern, `--lq` is a folder and each upscaled image is
paired with the LQ at the same relative path (same name, else the same name with another image
extension); an image without its LQ is recorded in the manifest as failed and the run goes on.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any, Callable

from ..batch.inputs import add_batch_arguments
from ..errors import InvalidInputError
from ..imagefiles import check_output_path, read_image, save_atomically
from ..restore.cli_support import add_restorer_arguments
from .analyze import add_word_filter_argument

logger = logging.getLogger(__name__)

#: flag value -> Keep Words mode (glyphsr_core.guard.KEEP_MODES; written out so --help loads no torch)
MODES = {"changed-words": "changed words", "all-text": "all text", "guidance-words": "guidance words"}


def add_keep_mode_argument(parser: argparse.ArgumentParser, *names: str) -> None:
    """`--keep-mode`, shared with `upscale` (its Text Guard and `--upscaler`)."""
    parser.add_argument(*names, dest="keep_mode", choices=tuple(MODES), default="changed-words",
                        help="changed-words: repair only words the upscaled image reads differently; all-text: every "
                             "word box; guidance-words: as changed-words, but words the guidance does not have are "
                             "left as drawn (default: %(default)s)")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("upscaled", nargs="+", metavar="UPSCALED",
                        help="the image another upscaler made (any size of the LQ's picture); or several, folders "
                             "(searched recursively) or glob patterns")
    parser.add_argument("--lq", type=Path, required=True,
                        help="the low-quality image it was made from; with several images: the folder of LQ images, "
                             "paired by relative name")
    parser.add_argument("-o", "--out", type=Path, required=True,
                        help="output image path (.png, .jpg, .webp or .tif); with several images: the output folder "
                             "(PNG files)")
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
    add_batch_arguments(parser)


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


def _keep_one(args: argparse.Namespace, restorer: Any = None, echo: Callable[[str], None] = print) -> int:
    """`args.upscaled` + `args.lq` -> `args.out` and its report (written last); returns the guidance words."""
    upscaled, lq = read_image(args.upscaled), read_image(args.lq)
    kept, report = keep_and_report(upscaled.for_method(), lq.for_method(), args, args.reference, args.dilation,
                                   restorer=restorer, echo=echo)
    report = {"upscaled": str(args.upscaled), "lq": str(args.lq), "output": str(args.out), **report}
    saved = save_atomically(kept, args.out, upscaled)
    report["files"] = {"upscaled": upscaled.info.to_dict(), "lq": lq.info.to_dict(), "output": saved.to_dict()}
    written = write_report(args.out, report)
    echo(f"{kept.width}x{kept.height} -> {args.out}")
    echo(f"report: {written}")
    return len(report["guidance"]["regions"])


def run(args: argparse.Namespace) -> int:
    from ..batch.inputs import is_batch

    if is_batch(args.upscaled, args.out):
        return _run_many(args)
    args.upscaled = Path(args.upscaled[0])
    check_output_path(args.out)  # an extension we cannot write fails before any work
    _keep_one(args)
    return 0


def _run_many(args: argparse.Namespace) -> int:
    """Every upscaled image with its LQ partner from the `--lq` folder; Text Restore and OCR loaded once."""
    import dataclasses

    from ..batch.inputs import find_partner
    from ..batch.runner import LoadedOnce, plan_jobs, run_batch

    if not args.lq.is_dir():
        raise InvalidInputError(f"--lq {args.lq} is not a folder: with several images, a folder or a pattern, --lq "
                                "names the folder of LQ images, paired with the upscaled ones by relative name")
    jobs = []
    for job in plan_jobs(args.upscaled, args.out, lambda rel: args.out / rel.with_suffix(".png")):
        partner = find_partner(args.lq, job.within)
        missing = None if partner else (f"no LQ partner for {job.within.as_posix()} in {args.lq} (looked for the "
                                        "same relative name with any image extension)")
        jobs.append(dataclasses.replace(job, partner=partner, error=job.error or missing))
    models = LoadedOnce()

    def restorer() -> Any:
        from ..restore.cli_support import load_cli_restorer

        if args.reference != "restore":
            return None
        return models.get(("Text Restore", str(args.restorer)), lambda: load_cli_restorer(args.restorer))

    def prepare(device: str | None, progress: Any) -> None:
        from ..ocr import get_engine

        if args.text is None:
            models.get("OCR", get_engine)
        restorer()

    def work(job: Any) -> int:
        one = argparse.Namespace(**{**vars(args), "upscaled": job.input, "lq": job.partner, "out": job.output})
        return _keep_one(one, restorer(), logger.debug)

    return run_batch(jobs, args.out, args.manifest, args.overwrite, lambda job: [job.output, report_path(job.output)],
                     work, prepare, models)
