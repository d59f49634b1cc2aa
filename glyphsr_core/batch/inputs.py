"""Files, folders and glob patterns -> jobs: one input image and the output path that mirrors its name.

A folder is searched recursively for images by extension (hidden files and folders left out, and
the output folder when it lies inside); its relative paths are kept under the output folder. With
one folder the outputs go straight into the output folder; with several inputs each folder's
outputs go under a subfolder named like it, and files and glob matches straight into the output
folder. Names that still clash (`a.jpg` and `a.png`) get `_2`, `_3` ... in input order.
"""

from __future__ import annotations

import argparse
import glob
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Callable

from ..data.corpus import IMAGE_SUFFIXES

GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Source:
    """One input image and its path relative to the output folder (`rel`, its own suffix kept);
    `error` says why it cannot run (e.g. a pattern that matched nothing)."""

    path: Path
    rel: PurePath
    error: str | None = None
    within: PurePath | None = None  # the path inside its own input folder (default: rel)


@dataclass(frozen=True)
class Job:
    """One image to process: `input`, the main `output` path (the image, or the report for `analyze`),
    `name` (the relative name shown in progress), `within` (its path inside its own input folder, for
    pairing), `partner` (the LQ of `keep-words`) and `error` (why it cannot run)."""

    input: Path
    output: Path
    name: str
    within: PurePath
    partner: Path | None = None
    error: str | None = None


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    """`--overwrite` and `--manifest`, shared by the commands that take many images."""
    parser.add_argument("--overwrite", action="store_true",
                        help="several images: redo outputs that are already complete (default: skip them, so a "
                             "stopped run resumes)")
    parser.add_argument("--manifest", type=Path, default=None, metavar="PATH",
                        help="several images: the JSONL file with one line per input (default: "
                             "OUT/manifest.jsonl)")


def is_pattern(text: str) -> bool:
    """A glob the command expands itself (quoted on the shell, or from a shell that left it as is)."""
    return any(c in GLOB_CHARS for c in text)


def is_batch(inputs: list[str], out: Path | None) -> bool:
    """Several inputs, a folder, a glob pattern, or an existing output folder: the many-images form."""
    if len(inputs) != 1:
        return True
    one = inputs[0]
    return Path(one).is_dir() or (is_pattern(one) and not Path(one).exists()) or (out is not None and out.is_dir())


def _is_image(path: Path, exclude: tuple[Path, ...]) -> bool:
    return (path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
            and not any(part.startswith(".") for part in path.parts[-1:])
            and not any(path.resolve().is_relative_to(e) for e in exclude))


def _folder_images(folder: Path, exclude: tuple[Path, ...]) -> list[Path]:
    found = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not _is_image(path, exclude):
            continue
        found.append(path)
    return found


def _glob_base(pattern: str) -> Path:
    """The folder part of a pattern before its first wildcard: match paths are kept relative to it."""
    parts = PurePath(pattern).parts
    fixed = []
    for part in parts:
        if is_pattern(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def expand_inputs(inputs: list[str], exclude: tuple[Path, ...] = ()) -> list[Source]:
    """Every input image in a stable order (each input in turn; a folder's or pattern's images sorted)."""
    exclude = tuple(p.resolve() for p in exclude)
    sources: list[Source] = []
    nested = len(inputs) > 1
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            prefix = PurePath(path.resolve().name) if nested else PurePath()
            sources += [Source(p, prefix / p.relative_to(path), within=PurePath(p.relative_to(path)))
                        for p in _folder_images(path, exclude)]
        elif is_pattern(text) and not path.exists():
            base = _glob_base(text)
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True))
            images = [m for m in matches if _is_image(m, exclude)]
            sources += [Source(m, PurePath(m.relative_to(base).name if nested else m.relative_to(base)),
                               within=PurePath(m.relative_to(base))) for m in images]
            if not images:
                sources.append(Source(path, PurePath(path.name), f"no image matches the pattern {text}"))
        else:  # a file, or a missing path: the job fails with the reader's own message
            sources.append(Source(path, PurePath(path.name)))
    return sources


def make_jobs(sources: list[Source], output_of: Callable[[PurePath], Path]) -> list[Job]:
    """One job per source; an output path already taken gets `_2`, `_3` ... before its suffix."""
    taken: set[Path] = set()
    jobs = []
    for source in sources:
        output = output_of(source.rel)
        number = 1
        candidate = output
        while candidate in taken:
            number += 1
            candidate = output_of(source.rel.with_name(f"{source.rel.stem}_{number}{source.rel.suffix}"))
        taken.add(candidate)
        jobs.append(Job(source.path, candidate, source.rel.as_posix(), source.within or source.rel,
                        error=source.error))
    return jobs


def find_partner(folder: Path, within: PurePath) -> Path | None:
    """The image in `folder` at the same relative path (same name first, else the same stem with any
    image extension), or None."""
    same = folder / within
    if same.is_file():
        return same
    for suffix in IMAGE_SUFFIXES:
        for candidate in (folder / within.with_suffix(suffix), folder / within.with_suffix(suffix.upper())):
            if candidate.is_file():
                return candidate
    return None
