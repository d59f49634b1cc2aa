"""The loop over a run's jobs: skip what is complete, do the rest, record every outcome, survive failures.

An output is complete when all its files exist; the command writes the report last (atomically), so
the report marks completion and a run stopped at any point (Ctrl-C, a kill) resumes where it
stopped. One image's failure is recorded and the run goes on; the exit code is 1 if any failed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
import time
from collections import Counter
from pathlib import Path, PurePath
from typing import Any, Callable, Iterator, Sequence

from ..errors import GlyphSRInputError
from ..errors import InvalidInputError
from ..data.corpus import IMAGE_SUFFIXES
from .inputs import Job, expand_inputs, make_jobs
from .outputs import partial_path
from .manifest import ManifestWriter, entry, merge_parts, part_path, read_manifest
from .progress import Progress
from .shard import Shard, detect_shard, device_for, join, leave, wait_for_everyone

logger = logging.getLogger("glyphsr_core.batch")


class LoadedOnce:
    """Models a run loads, each once, by key; `count` proves it (printed at the end of a run)."""

    def __init__(self) -> None:
        self._models: dict[Any, Any] = {}
        self.count = 0

    def get(self, key: Any, load: Callable[[], Any]) -> Any:
        """The model under `key`, loaded by `load()` the first time only."""
        if key not in self._models:
            self._models[key] = load()
            self.count += 1
            logger.info("model loaded: %s", key[0] if isinstance(key, tuple) else key)
        return self._models[key]


def report_words(report: dict[str, Any]) -> int | None:
    """How many words a report lists (the OCR reading, else the guidance words of Keep Words)."""
    for key in ("ocr", "guidance"):
        if isinstance(report.get(key), dict):
            return len(report[key].get("regions", ()))
    return None


def discard_incomplete(paths: Sequence[Path]) -> None:
    """After a failure or an interrupt: delete the temporary files the atomic writers leave beside `paths`,
    and, when the report (the last path) is not there, the job's other files: only whole, complete
    outputs stay."""
    for path in paths:
        partial_path(path).unlink(missing_ok=True)
    if not paths[-1].is_file():
        for path in paths[:-1]:
            path.unlink(missing_ok=True)


def _do(job: Job, work: Callable[[Job], int | None], outputs: list[Path], overwrite: bool) -> dict[str, Any]:
    start = time.perf_counter()
    if job.error is not None:
        return entry(job.input, job.output, "failed", 0.0, error=job.error)
    if not overwrite and all(p.is_file() for p in outputs):
        try:
            words = report_words(json.loads(outputs[-1].read_text(encoding="utf-8")))
        except (OSError, ValueError):
            words = None
        return entry(job.input, job.output, "skipped", time.perf_counter() - start, words)
    outputs[-1].unlink(missing_ok=True)  # redone: not complete until its new report is written
    try:
        words = work(job)
    except Exception as exc:  # one image's problem must not stop the run: recorded, exit code 1 at the end
        logger.debug("%s failed", job.input, exc_info=True)
        discard_incomplete(outputs)
        message = str(exc) if isinstance(exc, GlyphSRInputError) else f"{type(exc).__name__}: {exc}"
        return entry(job.input, job.output, "failed", time.perf_counter() - start, error=message)
    return entry(job.input, job.output, "ok", time.perf_counter() - start, words)


@contextlib.contextmanager
def _termination_as_interrupt() -> Iterator[None]:
    """SIGTERM (a launcher stopping its processes, `kill`) cleans up as Ctrl-C does."""
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave the signal alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_jobs(jobs: Sequence[Job], work: Callable[[Job], int | None], outputs_of: Callable[[Job], list[Path]],
             manifest: Path, *, overwrite: bool = False, shard: Shard = Shard(),
             progress: Progress | None = None, models: LoadedOnce | None = None) -> int:
    """Run this process's share of `jobs` (all of them without a launcher); returns the exit code
    (0: every image ok or skipped, 1: some failed), the same in every process."""
    mine = shard.take(jobs)
    join(shard)
    progress = progress or Progress(len(mine))
    outputs: list[Path] = []
    own = part_path(manifest, shard.rank) if shard.active else manifest
    with _termination_as_interrupt(), ManifestWriter(own) as writer:
        try:
            for job in mine:
                outputs = outputs_of(job)
                line = _do(job, work, outputs, overwrite)
                writer.write(line)
                progress.step(job.name, line["status"], line["seconds"])
                if line["status"] == "failed":
                    progress.write(f"failed {job.name}: {line['error']}")
        except KeyboardInterrupt:
            if outputs:
                discard_incomplete(outputs)
            progress.close()
            print(f"interrupted: {progress.done} of {len(mine)} image(s) finished, each written whole; run the "
                  "same command again to resume", file=sys.stderr)
            raise
    progress.close()
    if models is not None:
        print(f"{'' if not shard.active else f'process {shard.rank}: '}models loaded: {models.count} "
              f"(once for {len(mine)} image(s))", flush=True)
    return _finish(jobs, manifest, shard, progress.started)


def _finish(jobs: Sequence[Job], manifest: Path, shard: Shard, started: float) -> int:
    """Merge the processes' manifests (first process), then the summary; its last line gives the exit code."""
    if shard.active:
        wait_for_everyone(shard)
        if shard.rank == 0:
            merge_parts(manifest, shard.world_size, [str(job.output) for job in jobs])
        wait_for_everyone(shard)
        leave(shard)
    elapsed = time.perf_counter() - started
    counts = Counter(line["status"] for line in read_manifest(manifest))
    worked = counts["ok"]
    code = 1 if counts["failed"] else 0
    if shard.rank == 0:
        rate = f", {worked / elapsed:.2f} images/s" if worked and elapsed > 0 else ""
        processes = f" on {shard.world_size} processes" if shard.active else ""
        print(f"{len(jobs)} image(s){processes}: {counts['ok']} ok, {counts['skipped']} skipped, "
              f"{counts['failed']} failed in {elapsed:.1f} s{rate}; manifest: {manifest}")
        print(f"exit code {code}: " + (f"{counts['failed']} image(s) failed (their errors are in the manifest)"
                                       if code else "every image ok or skipped"))
    return code


def plan_jobs(inputs: list[str], out: Path, output_of: Callable[[PurePath], Path]) -> list[Job]:
    """The run's jobs (glyphsr_core.batch.inputs): `out` is a folder; refuses a run with no image at all."""
    if out.is_file():
        raise InvalidInputError(f"-o {out} is a file: with several images, a folder or a pattern, -o names the "
                                "output folder")
    jobs = make_jobs(expand_inputs(inputs, exclude=(out,)), output_of)
    if not jobs:
        raise InvalidInputError(f"no images found in {', '.join(inputs)} (looked for {', '.join(IMAGE_SUFFIXES)})")
    return jobs


def run_batch(jobs: Sequence[Job], out: Path, manifest: Path | None, overwrite: bool,
              outputs_of: Callable[[Job], list[Path]], work: Callable[[Job], int | None],
              prepare: Callable[[str | None, Progress], None], models: LoadedOnce) -> int:
    """A whole run: this process's device, the models loaded by `prepare` before the first image, the loop."""
    shard = detect_shard()
    progress = Progress(len(shard.take(jobs)))
    prepare(device_for(shard), progress)
    return run_jobs(jobs, work, outputs_of, manifest or out / "manifest.jsonl", overwrite=overwrite, shard=shard,
                    progress=progress, models=models)
