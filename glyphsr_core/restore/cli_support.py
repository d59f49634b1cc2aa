"""The `--restorer` options shared by `upscale`, `analyze` and `evaluate`."""

from __future__ import annotations

import argparse
from pathlib import Path

from typing import TYPE_CHECKING

from .. import defaults
from .bundled import BUNDLED_PATH

if TYPE_CHECKING:
    from .model_file import LoadedRestorer


def add_restorer_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--restorer", type=Path, default=None,
                        help=f"Text Restore model (.safetensors, any SR model spandrel reads; default: the bundled {BUNDLED_PATH.name})")
    parser.add_argument("--tile", type=int, default=defaults.RESTORE_TILE,
                        help="Text Restore tile size in input pixels (memory bound)")
    parser.add_argument("--tile-overlap", type=int, default=defaults.RESTORE_CONTEXT_MARGIN,
                        help="Text Restore context margin: input pixels neighbouring tiles share (half on each side is read as context and discarded)")


def load_cli_restorer(path: Path | None) -> "LoadedRestorer":
    """The restorer named on the command line, or the bundled one (with a sentence if it is missing)."""
    from .model_file import RestorerFileError, load_restorer

    if path is None and not BUNDLED_PATH.is_file():
        raise RestorerFileError(f"the bundled Text Restore model is missing ({BUNDLED_PATH}); reinstall the pack "
                                "or pass --restorer FILE")
    return load_restorer(path or BUNDLED_PATH)
