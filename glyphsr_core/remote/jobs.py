"""Inputs of `queue` (files, folders, globs) and where each one's outputs go.

An input `photos/sub/sign.png` given through the folder `photos` writes `OUT/sub/sign_<node>_<i>.png`
(a file given directly writes `OUT/sign_<node>_<i>.png`): the SaveImage node's id and the image's
index in that node's batch, so a workflow with two SaveImage nodes or a batch never overwrites.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ..batch.inputs import expand_inputs as expand_sources
from ..data.corpus import IMAGE_SUFFIXES
from ..errors import InputNotFoundError, InvalidInputError


@dataclass(frozen=True)
class Job:
    """One input image and the stem of its outputs, relative to OUT (e.g. "sub/sign")."""

    source: Path
    stem: str

    def upload_name(self) -> str:
        """A name for the server's input folder: the content hash keeps two inputs called the same apart."""
        digest = hashlib.sha256(self.source.read_bytes()).hexdigest()[:12]
        return f"{digest}_{self.source.name}"

    def output_name(self, node_id: str, index: int, filename: str) -> str:
        """`<stem>_<node>_<index><ext>`, the extension of what the server saved."""
        return f"{self.stem}_{node_id}_{index}{Path(filename).suffix or '.png'}"


def expand_inputs(items: list[str]) -> list[Job]:
    """Files, folders (their images, recursively, sub-folders mirrored) and glob patterns -> jobs, found
    by the same rules as the local commands' (`glyphsr_core.batch.inputs`)."""
    sources = expand_sources(items)
    for source in sources:
        if source.error is not None or not source.path.is_file():
            raise InputNotFoundError(f"input '{source.path}' does not exist (give image files, folders or glob "
                                     f"patterns){': ' + source.error if source.error else ''}")
    if not sources:
        raise InvalidInputError(f"no image found in {', '.join(items)} (looked for {', '.join(IMAGE_SUFFIXES)})")
    return _unique([Job(source.path.resolve(), source.rel.with_suffix("").as_posix()) for source in sources])


def _unique(jobs: list[Job]) -> list[Job]:
    seen: dict[Path, Job] = {}
    stems: dict[str, Path] = {}
    for job in jobs:
        if job.source in seen:
            continue
        if job.stem in stems:
            raise InvalidInputError(f"inputs '{stems[job.stem]}' and '{job.source}' would both write "
                                    f"outputs named '{job.stem}_*': give them through their folders or rename one")
        seen[job.source], stems[job.stem] = job, job.source
    return list(seen.values())
