"""`python -m glyphsr_core COMMAND ...`: the plain-Python entry point.

Each command lives in its own module exposing `configure(parser)` and `run(args) -> int`.
Those modules keep heavy imports inside `run`, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback

from .errors import GlyphSRInputError

#: command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "analyze": ("glyphsr_core.commands.analyze", "OCR an image, build the four prompts, write glyph map, mask, preview and report"),
    "train": ("glyphsr_core.commands.train", "train the TS-ControlNet text branch (diffusers + accelerate) from a YAML/TOML config"),
    "upscale": ("glyphsr_core.commands.upscale", "upscale an image with GLYPH-SR headless (diffusers): OCR, prompts, TS-ControlNet, ping-pong"),
    "train-restorer": ("glyphsr_core.commands.train_restorer", "train the Text Restore network (compact x4 SR with a text prior) from a YAML config"),
    "ts-bundle": ("glyphsr_core.commands.ts_bundle", "write a TS-ControlNet bundle (scene + text ControlNet branches) from .safetensors files"),
    "make-corpus": ("glyphsr_core.commands.make_corpus", "write a synthetic text corpus: HQ/LQ pairs, masks, glyph maps, metadata.jsonl"),
    "make-lq": ("glyphsr_core.commands.make_lq", "write a dataset's LQ inputs at a scale (for evaluating another tool's outputs)"),
    "keep-words": ("glyphsr_core.commands.keep_words", "put a faithful upscale's words back into an image another upscaler made"),
    "queue": ("glyphsr_core.commands.queue", "run an API-format workflow on many images through one or more ComfyUI servers"),
    "evaluate": ("glyphsr_core.commands.evaluate", "OCR F1 / CER / PSNR of upscaling methods on SVT, CTW1500, CUTE80 or a synthetic corpus"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m glyphsr_core", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and debug details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.configure(command_parser)
        command_parser.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command. Errors in the user's input print one line and exit 2; anything else is a bug
    or an environment problem and keeps its traceback. `-v` shows the traceback of both."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    try:
        return int(args._module.run(args) or 0)
    except GlyphSRInputError as exc:  # each says what to change
        if args.verbose:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
