"""Text Restore: the pack's stage 1, a compact text-aware x4 super-resolution network.

`load_restorer` reads a `.safetensors` restorer (the bundled one or any spandrel-known SR model);
`restore` / `restore_pil` run it with tiles on images of any size at x2, x4 or x8. Names load on
first use, so importing this package (e.g. for `--help`) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from .bundled import BUNDLED_NAME, BUNDLED_PATH

_LAZY = {
    "LoadedRestorer": "model_file", "RestorerFileError": "model_file", "load_restorer": "model_file",
    "save_restorer": "model_file", "RestoreInputError": "run", "restore": "run", "restore_pil": "run",
}

__all__ = ["BUNDLED_NAME", "BUNDLED_PATH", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
