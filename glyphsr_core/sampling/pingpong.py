"""Ping-pong schedules: which prompt pair (scene or text) guides each denoising step.

GLYPH-SR alternates guidance between a scene-centric and a text-centric prompt pair from one
step to the next. This module holds the whole decision so that it can be tested without
ComfyUI:

- `branch_for_step(step, total_steps, ...)` maps step `i` of `n` to "scene" or "text";
- `step_from_sigma(sigma, sample_sigmas)` maps the noise level of one model evaluation to the
  step it belongs to (samplers such as heun or dpmpp_2s_ancestral evaluate the model more than
  once per step, and a guider only sees the sigma);
- `PingPong` bundles a validated schedule with the two CFG scales (and an optional CFG ramp)
  and answers both questions at once for the guider.

Step `i` covers the noise levels between `sigmas[i]` (included) and `sigmas[i+1]` (excluded):
for the usual decreasing schedule that is the interval `(sigmas[i+1], sigmas[i]]`. An
evaluation exactly at a grid sigma belongs to the step that starts there, so heun's corrector
(evaluated at `sigmas[i+1]`) is guided like step `i+1`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from .. import defaults
from ..errors import InvalidInputError

SCHEDULES = ("alternate", "alternate_then_text", "scene_then_text", "pattern")
BRANCHES = ("scene", "text")
PATTERN_LETTERS = {"S": "scene", "T": "text"}

#: relative tolerance for "this sigma is that grid sigma" (float32 round-off, exp/log round trips)
SIGMA_RTOL = 1e-4


class ScheduleError(InvalidInputError):
    """Raised for a ping-pong schedule or sigma list that cannot be used."""


def _check_schedule(schedule: str) -> None:
    if schedule not in SCHEDULES:
        raise ScheduleError(f"schedule must be one of {', '.join(SCHEDULES)}; got {schedule!r}")


def _check_switch_at(switch_at: float) -> float:
    try:
        value = float(switch_at)
    except (TypeError, ValueError) as exc:
        raise ScheduleError(f"switch_at must be a number between 0 and 1; got {switch_at!r}") from exc
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ScheduleError(f"switch_at must be between 0 and 1 (a fraction of the steps); got {switch_at!r}")
    return value


def normalize_pattern(pattern: str) -> str:
    """Upper-case pattern of S/T letters (spaces ignored), or ScheduleError saying what is wrong."""
    if not isinstance(pattern, str):
        raise ScheduleError(f"pattern must be a string of S and T letters; got {pattern!r}")
    letters = "".join(pattern.split()).upper()
    if not letters:
        raise ScheduleError("pattern is empty: give a repeating string of S (scene) and T (text) letters, e.g. 'SST'")
    wrong = sorted({c for c in letters if c not in PATTERN_LETTERS})
    if wrong:
        raise ScheduleError(
            f"pattern {pattern!r} may only contain S (scene) and T (text); found {', '.join(map(repr, wrong))}")
    return letters


def switch_step(total_steps: int, switch_at: float) -> int:
    """Index of the first step at or after the `switch_at` fraction of `total_steps` steps."""
    # the small slack keeps e.g. 0.7 * 10 = 7.000000000000001 at step 7
    return min(total_steps, max(0, math.ceil(_check_switch_at(switch_at) * total_steps - 1e-9)))


def branch_for_step(step: int, total_steps: int, schedule: str = "alternate", switch_at: float = 0.9,
                    pattern: str = "ST") -> str:
    """"scene" or "text": the prompt pair that guides step `step` (0-based) of `total_steps`.

    - alternate: scene on even steps, text on odd steps (the authors' sampler);
    - alternate_then_text: alternate before the `switch_at` fraction of the steps, text after;
    - scene_then_text: scene before the `switch_at` fraction of the steps, text after;
    - pattern: the S/T letters of `pattern`, repeated (`pattern` is ignored by other schedules).

    A single step (total_steps = 1) is step 0, which every schedule but a pattern starting with T
    or `switch_at` = 0 gives to the scene pair.
    """
    _check_schedule(schedule)
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
        raise ScheduleError(f"total_steps must be a whole number of at least 1; got {total_steps!r}")
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step < total_steps:
        raise ScheduleError(f"step must be a whole number in [0, {total_steps - 1}]; got {step!r}")
    if schedule == "pattern":
        letters = normalize_pattern(pattern)
        return PATTERN_LETTERS[letters[step % len(letters)]]
    alternate = "scene" if step % 2 == 0 else "text"
    if schedule == "alternate":
        return alternate
    late = step >= switch_step(total_steps, switch_at)
    if late:
        return "text"
    return alternate if schedule == "alternate_then_text" else "scene"


def _first_float(sigma: Any) -> float:
    """The sigma of a model evaluation: a number, or the first entry of a per-sample tensor."""
    flatten = getattr(sigma, "flatten", None)
    if flatten is not None:
        flat = flatten()
        if flat.numel() == 0:
            raise ScheduleError("the evaluation sigma is an empty tensor")
        return float(flat[0])
    return float(sigma)


def sigma_list(sample_sigmas: Any) -> list[float]:
    """The sampling sigmas as a list of floats, checked to describe at least one step."""
    values = sample_sigmas.tolist() if hasattr(sample_sigmas, "tolist") else list(sample_sigmas)
    if values and isinstance(values[0], list):
        raise ScheduleError("sample_sigmas must be one-dimensional")
    values = [float(v) for v in values]
    if len(values) < 2:
        raise ScheduleError(f"sample_sigmas must hold at least 2 sigmas (one step); got {len(values)}")
    if not all(math.isfinite(v) for v in values):
        raise ScheduleError(f"sample_sigmas must be finite; got {values}")
    return values


def _same_sigma(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=SIGMA_RTOL, abs_tol=1e-9)


def step_from_sigma(sigma: Any, sample_sigmas: Sequence[float] | Any) -> int:
    """Step index (0 .. len(sample_sigmas) - 2) of a model evaluation at noise level `sigma`.

    Step i spans `sigmas[i]` (included) to `sigmas[i+1]` (excluded), in either direction, with a
    relative tolerance of SIGMA_RTOL at the grid points. Sigmas beyond the schedule map to the
    nearest end: churn (`sigma_hat > sigmas[0]`) to step 0, anything past the last sigma (or at a
    final sigma of 0) to the last step. `sample_sigmas` is exactly what the sampler runs, so a
    schedule shortened by denoise < 1 or start/end steps is counted from its own first step.
    """
    sigmas = sigma_list(sample_sigmas)
    s = _first_float(sigma)
    if not math.isfinite(s):
        raise ScheduleError(f"the evaluation sigma must be finite; got {s}")
    last = len(sigmas) - 2
    for i, grid in enumerate(sigmas):
        if _same_sigma(s, grid):
            return min(i, last)
    for i in range(last + 1):
        lo, hi = sorted((sigmas[i], sigmas[i + 1]))
        if lo < s < hi:
            return i
    return 0 if abs(s - sigmas[0]) <= abs(s - sigmas[-1]) else last


@dataclass(frozen=True)
class Choice:
    """What one model evaluation should use."""

    step: int
    total_steps: int
    branch: str
    cfg: float


@dataclass(frozen=True)
class PingPong:
    """A validated ping-pong setting: schedule plus the CFG scale of each branch.

    `cfg_start` > 0 ramps the CFG linearly over the steps, from `cfg_start` at the first step
    to `cfg` (scene steps) / `text_cfg` (text steps) at the last, like the authors' 4.0 -> 7.5;
    0 keeps every step at `cfg` / `text_cfg`. The field defaults are `glyphsr_core.defaults`.
    """

    schedule: str = defaults.SCHEDULE
    switch_at: float = defaults.SWITCH_AT
    pattern: str = defaults.PATTERN
    cfg: float = defaults.CFG
    text_cfg: float = defaults.TEXT_CFG
    cfg_start: float = defaults.CFG_START

    def __post_init__(self) -> None:
        _check_schedule(self.schedule)
        object.__setattr__(self, "switch_at", _check_switch_at(self.switch_at))
        if self.schedule == "pattern":
            object.__setattr__(self, "pattern", normalize_pattern(self.pattern))
        for name in ("cfg", "text_cfg", "cfg_start"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
                raise ScheduleError(f"{name} must be a finite number >= 0; got {value!r}")
            object.__setattr__(self, name, float(value))

    def branch(self, step: int, total_steps: int) -> str:
        return branch_for_step(step, total_steps, self.schedule, self.switch_at, self.pattern)

    def cfg_for(self, branch: str, step: int, total_steps: int) -> float:
        """CFG scale of `branch` at `step`, including the optional ramp."""
        if branch not in BRANCHES:
            raise ScheduleError(f"branch must be one of {BRANCHES}; got {branch!r}")
        target = self.cfg if branch == "scene" else self.text_cfg
        if self.cfg_start <= 0.0 or total_steps < 2:
            return target
        return self.cfg_start + (target - self.cfg_start) * (step / (total_steps - 1))

    def choose(self, sigma: Any, sample_sigmas: Sequence[float] | Any) -> Choice:
        """Step, branch and CFG scale for a model evaluation at `sigma`."""
        sigmas = sigma_list(sample_sigmas)
        step = step_from_sigma(sigma, sigmas)
        total = len(sigmas) - 1
        branch = self.branch(step, total)
        return Choice(step, total, branch, self.cfg_for(branch, step, total))

    def branches(self, total_steps: int) -> str:
        """The whole schedule as S/T letters, e.g. 'STSTT' (for logs and tooltips)."""
        return "".join("S" if self.branch(i, total_steps) == "scene" else "T" for i in range(total_steps))
