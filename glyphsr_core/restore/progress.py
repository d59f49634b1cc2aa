"""What a long Text Restore run says while it works: a time estimate before it starts, tiles as they finish.

The estimate comes from measured seconds per megapixel the net reads (the input at x2 and x4, the
input's bicubic x2 at x8); it is an estimate, said as one: other work on the machine, another net or a
slower card change it. `TileProgressLog` is a plain `(done, total)` callable, so any caller can pass
its own instead (the nodes drive ComfyUI's progress bar with the same hook).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

#: seconds per megapixel the bundled net reads, measured with 512-px tiles on 2 lightly loaded CPU cores
#: (12.3 s; docs/benchmarks.md, "Huge images"), the smooth-area blend and the 8-bit paste included.
#: Other devices have no measured figure yet: for them only the output size is said
SECONDS_PER_MEGAPIXEL = {"cpu": 14.0}
#: an estimate above this many seconds is logged as a warning before the work starts
WARN_AFTER_SECONDS = 60.0
#: an estimate below this many seconds is logged at debug level: a folder of small images stays quiet
QUIET_BELOW_SECONDS = 10.0
#: least seconds between two progress lines (the first and last tile are always logged)
LOG_EVERY_SECONDS = 2.0


def estimate_seconds(width: int, height: int, scale: int, net_scale: int, device: str) -> float:
    """Rough seconds for Text Restore of a `width` x `height` input at `scale` on `device` (one with a
    figure in `SECONDS_PER_MEGAPIXEL`)."""
    pre = max(1, scale // net_scale)
    megapixels = width * height * pre * pre / 1e6
    return megapixels * SECONDS_PER_MEGAPIXEL[device.split(":")[0]]


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def announce(width: int, height: int, scale: int, net_scale: int, device: str | None) -> float | None:
    """Log the output size (and its memory as an 8-bit image) and the time estimate: a warning over
    `WARN_AFTER_SECONDS`, so a long run is never a silent one; debug level under `QUIET_BELOW_SECONDS`.
    `device` None (a net without a measured figure) or a device without one: the size only. Returns the
    estimate or None."""
    out_w, out_h = width * scale, height * scale
    size = (f"Text Restore x{scale}: {width}x{height} -> {out_w}x{out_h} ({out_w * out_h / 1e6:.0f} MP, "
            f"{out_w * out_h * 3 / 2**30:.2f} GiB as an 8-bit RGB image)")
    if device is None or device.split(":")[0] not in SECONDS_PER_MEGAPIXEL:
        logger.info("%s", size)
        return None
    seconds = estimate_seconds(width, height, scale, net_scale, device)
    if seconds > WARN_AFTER_SECONDS:
        logger.warning("%s: expect about %s on %s (an estimate from a measured %.2f s per input megapixel; "
                       "other load changes it)", size, _duration(seconds), device, seconds / (width * height / 1e6))
    else:
        level = logging.INFO if seconds >= QUIET_BELOW_SECONDS else logging.DEBUG
        logger.log(level, "%s: about %s on %s (estimate)", size, _duration(seconds), device)
    return seconds


class TileProgressLog:
    """`(done, total)` hook that logs 'Text Restore: tile 3/117 (3%), 40 s, about 25 min left' lines,
    at most one every `LOG_EVERY_SECONDS` (always the first and the last tile)."""

    def __init__(self, label: str = "Text Restore", clock: Callable[[], float] = time.monotonic) -> None:
        self.label, self.clock = label, clock
        self.start = clock()
        self.last = float("-inf")

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        if done not in (1, total) and now - self.last < LOG_EVERY_SECONDS:
            return
        self.last = now
        elapsed = now - self.start
        left = elapsed / done * (total - done) if done else 0.0
        logger.info("%s: tile %d/%d (%d%%), %s, about %s left", self.label, done, total, 100 * done // total,
                    _duration(elapsed), _duration(left))

    def begin(self, total: int) -> None:
        """The line before the first tile: the run has started and how many tiles it has."""
        self.start = self.clock()
        logger.info("%s: tile 0/%d", self.label, total)
