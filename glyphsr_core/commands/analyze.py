"""`analyze`: what GLYPH-SR will read and ask for, for one image or many, with no diffusion and no downloads.

Writes `<stem>_glyph.png` (glyph map), `<stem>_mask.png` (text mask), `<stem>_preview.png` (words
outlined; tokens the word filter dropped in red) and `<stem>_report.json` (OCR result, dropped
tokens with reasons, the four prompts) into the output folder, each file atomically, the report
last. Several images, a folder or a glob pattern (glyphsr_core.batch) need `-o FOLDER`: each image's
files go into the subfolder that mirrors its own, a manifest records every image, and an image
whose report exists is skipped (`--overwrite` redoes it).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path, PurePath
from typing import Any, Callable

from .. import defaults
from ..batch.inputs import add_batch_arguments, is_batch
from ..batch.outputs import save_image, save_json
from ..errors import InvalidInputError
from ..imageops import open_image_file
from ..ocr import filter_words, read_text
from ..ocr.hygiene import DEFAULT_WORD_FILTER, WORD_FILTERS
from ..restore.cli_support import add_restorer_arguments
from ..text.glyphs import render_glyph_map, render_text_mask
from ..text.preview import draw_ocr_preview
from ..text.prompts import build_prompts

logger = logging.getLogger(__name__)


def add_word_filter_argument(parser: argparse.ArgumentParser) -> None:
    """`--word-filter`, shared by `analyze` and `upscale`."""
    parser.add_argument("--word-filter", choices=WORD_FILTERS, default=DEFAULT_WORD_FILTER,
                        help="standard: drop OCR tokens that are not words (symbols or punctuation only, one "
                             "character read below 0.8 confidence, a lone character of another script among "
                             "words, e.g. a pictogram); off: keep all (default: %(default)s)")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", nargs="+", metavar="IMAGE",
                        help="image to analyse (PNG, JPEG, WebP ...); or several, folders (searched recursively) "
                             "or glob patterns")
    parser.add_argument("-o", "--out", type=Path, default=None,
                        help="output folder (default: next to the image; needed with several images)")
    parser.add_argument("--caption", default="", help="scene caption to put into the prompts")
    parser.add_argument("--min-confidence", type=float, default=defaults.MIN_CONFIDENCE,
                        help="drop words read with lower confidence")
    parser.add_argument("--ocr-scale", default="auto", help="enlarge before OCR: auto, 1, 2, 3 or 4")
    add_word_filter_argument(parser)
    parser.add_argument("--no-group-letters", dest="group_letters", action="store_false",
                        help="keep the OCR engine's words as returned (by default, letters of one printed word "
                             "read as separate words are merged back into the word)")
    parser.add_argument("--max-words", type=int, default=defaults.MAX_WORDS, help="most distinct words in the text prompt")
    parser.add_argument("--mask-dilation", type=int, default=4, help="grow the text mask by this many pixels")
    parser.add_argument("--scale", type=int, default=1, help="render glyph map and mask at this multiple of the size")
    parser.add_argument("--restore", action="store_true",
                        help="also run Text Restore (x4) and read the restored image: the report gives both readings, "
                             "and the glyph map, mask and prompts use the restored one")
    add_restorer_arguments(parser)
    add_batch_arguments(parser)


def _files(out_dir: Path, stem: str, restore: bool) -> dict[str, Path]:
    """Every file one image's analysis writes; the report last (it marks the image done)."""
    names = {"glyph": "glyph.png", "mask": "mask.png", "preview": "preview.png",
             **({"restored": "restored.png"} if restore else {}), "report": "report.json"}
    return {key: out_dir / f"{stem}_{name}" for key, name in names.items()}


def run(args: argparse.Namespace) -> int:
    if args.scale < 1:
        raise InvalidInputError(f"--scale must be >= 1, got {args.scale}")
    if is_batch(args.image, None):
        return _run_many(args)
    image_path = Path(args.image[0])
    image = open_image_file(image_path)
    out_dir = args.out or image_path.parent
    load = None
    if args.restore:
        from ..restore.cli_support import load_cli_restorer

        def load() -> Any:
            return load_cli_restorer(args.restorer)
    _analyze(args, image_path, image, _files(out_dir, image_path.stem, args.restore), load, print)
    return 0


def _run_many(args: argparse.Namespace) -> int:
    """Many images into `-o`: the restorer (with --restore) and OCR loaded once, complete ones skipped."""
    from ..batch.runner import LoadedOnce, plan_jobs, run_batch

    if args.out is None:
        raise InvalidInputError("with several images, a folder or a pattern, give the output folder: -o FOLDER")
    models = LoadedOnce()

    def restorer() -> Any:
        from ..restore.cli_support import load_cli_restorer

        return models.get(("Text Restore", str(args.restorer)), lambda: load_cli_restorer(args.restorer))

    def files(job: Any) -> dict[str, Path]:
        return _files(job.output.parent, job.output.name[:-len("_report.json")], args.restore)

    def prepare(device: str | None, progress: Any) -> None:
        from ..ocr import get_engine

        models.get("OCR", get_engine)
        if args.restore:
            restorer()

    def work(job: Any) -> int:
        return _analyze(args, job.input, open_image_file(job.input), files(job), restorer if args.restore else None,
                        logger.debug)

    jobs = plan_jobs(args.image, args.out, lambda rel: args.out / rel.parent / f"{PurePath(rel).stem}_report.json")
    return run_batch(jobs, args.out, args.manifest, args.overwrite, lambda job: list(files(job).values()), work,
                     prepare, models)


def _analyze(args: argparse.Namespace, image_path: Path, image: Any, paths: dict[str, Path],
             restorer: Callable[[], Any] | None, echo: Callable[[str], None]) -> int:
    """One image: OCR (and Text Restore), prompts, the files in `paths`; returns the number of words."""
    result, dropped = filter_words(read_text(image, min_confidence=args.min_confidence, ocr_scale=args.ocr_scale,
                                             group_letters=args.group_letters), args.word_filter)
    lq_reading = None
    if restorer is not None:
        from ..restore import restore_pil

        loaded = restorer()
        restored = restore_pil(loaded.model, loaded.scale, image, 4, tile=args.tile, context_margin=args.tile_overlap)
        save_image(restored, paths["restored"])
        lq_reading = result
        result, dropped = filter_words(read_text(restored, min_confidence=args.min_confidence,
                                                 ocr_scale=args.ocr_scale, group_letters=args.group_letters),
                                       args.word_filter)
    prompts = build_prompts(args.caption, result, max_words=args.max_words)
    width, height = image.width * args.scale, image.height * args.scale
    save_image(render_glyph_map(result, width, height), paths["glyph"])
    save_image(render_text_mask(result, width, height, args.mask_dilation * args.scale), paths["mask"])
    save_image(draw_ocr_preview(image, result, [(d.region, d.reason) for d in dropped]), paths["preview"])
    shown = {k: v for k, v in paths.items() if k != "restored"}
    report = {
        "image": str(image_path),
        "ocr": result.to_dict(),
        **({"ocr_input": lq_reading.to_dict(), "restored": str(paths["restored"])} if lq_reading is not None else {}),
        "word_filter": args.word_filter,
        "group_letters": args.group_letters,
        "ocr_dropped": [d.to_dict() for d in dropped],
        "prompts": {
            "scene_positive": prompts.scene_positive,
            "scene_negative": prompts.scene_negative,
            "text_positive": prompts.text_positive,
            "text_negative": prompts.text_negative,
        },
        "words_used": list(prompts.words_used),
        "words_dropped": list(prompts.words_dropped),
        "summary": prompts.summary(),
        "outputs": {k: str(v) for k, v in shown.items() if k != "report"},
    }
    save_json(report, paths["report"])
    if lq_reading is not None:
        echo(f"input: {len(lq_reading.regions)} word(s): {lq_reading.text}")
        echo(f"restored ({paths['restored']}): {len(result.regions)} word(s): {result.text}")
    else:
        echo(f"{len(result.regions)} word(s): {result.text}")
    for item in dropped:
        echo(f"dropped {item.region.text!r}: {item.reason}")
    echo(f"text prompt: {prompts.text_positive}")
    for name, path in shown.items():
        echo(f"{name}: {path}")
    return len(result.regions)
