"""`analyze`: what GLYPH-SR will read and ask for, for one image, with no diffusion and no downloads.

Writes `<stem>_glyph.png` (glyph map), `<stem>_mask.png` (text mask), `<stem>_preview.png` (words
outlined; tokens the word filter dropped in red) and `<stem>_report.json` (OCR result, dropped
tokens with reasons, the four prompts) into the output folder.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from .. import defaults
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
    parser.add_argument("image", type=Path, help="image to analyse (PNG, JPEG, WebP ...)")
    parser.add_argument("-o", "--out", type=Path, default=None, help="output folder (default: next to the image)")
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


def run(args: argparse.Namespace) -> int:
    if args.scale < 1:
        raise InvalidInputError(f"--scale must be >= 1, got {args.scale}")
    image = open_image_file(args.image)
    out_dir = args.out or args.image.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = args.image.stem

    result, dropped = filter_words(read_text(image, min_confidence=args.min_confidence, ocr_scale=args.ocr_scale,
                                             group_letters=args.group_letters), args.word_filter)
    lq_reading = None
    restored_path = None
    if args.restore:
        from ..restore import restore_pil
        from ..restore.cli_support import load_cli_restorer

        loaded = load_cli_restorer(args.restorer)
        restored = restore_pil(loaded.model, loaded.scale, image, 4, tile=args.tile, context_margin=args.tile_overlap)
        restored_path = out_dir / f"{stem}_restored.png"
        restored.save(restored_path)
        lq_reading = result
        result, dropped = filter_words(read_text(restored, min_confidence=args.min_confidence,
                                                 ocr_scale=args.ocr_scale, group_letters=args.group_letters),
                                       args.word_filter)
    prompts = build_prompts(args.caption, result, max_words=args.max_words)
    width, height = image.width * args.scale, image.height * args.scale
    paths = {
        "glyph": out_dir / f"{stem}_glyph.png",
        "mask": out_dir / f"{stem}_mask.png",
        "preview": out_dir / f"{stem}_preview.png",
        "report": out_dir / f"{stem}_report.json",
    }
    render_glyph_map(result, width, height).save(paths["glyph"])
    render_text_mask(result, width, height, args.mask_dilation * args.scale).save(paths["mask"])
    draw_ocr_preview(image, result, [(d.region, d.reason) for d in dropped]).save(paths["preview"])
    report = {
        "image": str(args.image),
        "ocr": result.to_dict(),
        **({"ocr_input": lq_reading.to_dict(), "restored": str(restored_path)} if lq_reading is not None else {}),
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
        "outputs": {k: str(v) for k, v in paths.items() if k != "report"},
    }
    paths["report"].write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    if lq_reading is not None:
        print(f"input: {len(lq_reading.regions)} word(s): {lq_reading.text}")
        print(f"restored ({restored_path}): {len(result.regions)} word(s): {result.text}")
    else:
        print(f"{len(result.regions)} word(s): {result.text}")
    for item in dropped:
        print(f"dropped {item.region.text!r}: {item.reason}")
    print(f"text prompt: {prompts.text_positive}")
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0
