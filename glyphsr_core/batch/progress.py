"""Progress over the images of a run, with an ETA: a bar on a terminal, plain log lines otherwise.

`Progress.inner(done, total)` is the hook for a stage inside one image (diffusion steps, restore
tiles): it shows that count beside the bar, or logs it at debug level.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

logger = logging.getLogger("glyphsr_core.batch")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """Counts finished images; the ETA comes from the images this run actually worked on (skips are free)."""

    def __init__(self, total: int, label: str = "images", stream: TextIO | None = None,
                 bar: bool | None = None) -> None:
        self.total, self.label, self.done, self.worked, self.work_seconds = total, label, 0, 0, 0.0
        self.started = time.perf_counter()
        self.stream = stream or sys.stderr
        self._bar: Any = None
        if bar if bar is not None else self.stream.isatty():
            try:
                from tqdm import tqdm
            except ImportError:  # a requirement, but a missing bar is no reason to stop: log lines instead
                return
            self._bar = tqdm(total=total, unit="img", file=self.stream, dynamic_ncols=True)

    def eta(self) -> float | None:
        """Seconds left: images still to do times this run's mean seconds per worked image."""
        if not self.worked:
            return None
        return (self.total - self.done) * self.work_seconds / self.worked

    def step(self, name: str, status: str, seconds: float) -> None:
        """One image finished (ok, skipped or failed) after `seconds`."""
        self.done += 1
        if status != "skipped":
            self.worked += 1
            self.work_seconds += seconds
        if self._bar is not None:
            self._bar.set_postfix_str(f"{status} {name}", refresh=False)
            self._bar.update(1)
            return
        eta = self.eta()
        logger.info("[%d/%d] %s %s (%.1f s)%s", self.done, self.total, status, name, seconds,
                    "" if eta is None else f", ETA {_duration(eta)}")

    def inner(self, done: int, total: int) -> None:
        """Hook for a stage inside one image, e.g. tiles or steps: `done` of `total`."""
        if self._bar is not None:
            self._bar.set_postfix_str(f"{done}/{total}")
        else:
            logger.debug("  %d/%d", done, total)

    def write(self, text: str) -> None:
        """A line that does not break the bar."""
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
