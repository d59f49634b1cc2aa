"""Whole files or none: write beside the target under a hidden temporary name, then rename.

A run stopped mid-write leaves no half-written output; the temporary file (`.<name>.partial`, the
name `imagefiles.save_atomically` uses too) is removed by the runner on an interrupt or a
failure, and overwritten by the next run otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable


def partial_path(path: Path) -> Path:
    """The temporary name beside `path`: hidden, so a folder run never reads it as an input."""
    return path.with_name(f".{path.name}.partial")


def write_atomically(path: Path, write: Callable[[Path], None]) -> Path:
    """`write(temporary)`, then rename it to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(path)
    try:
        write(partial)
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


def save_image(image: Any, path: Path) -> Path:
    """A PIL image as PNG, atomically."""
    return write_atomically(path, lambda partial: image.save(partial, format="PNG"))


def save_json(data: dict, path: Path) -> Path:
    """A report, atomically (UTF-8, indented as every report of the pack)."""
    text = json.dumps(data, ensure_ascii=False, indent=2)
    return write_atomically(path, lambda partial: partial.write_text(text, encoding="utf-8"))
