"""Ping-pong schedules and the sigma -> step mapping (no ComfyUI)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from glyphsr_core.sampling.pingpong import (
    SCHEDULES,
    PingPong,
    ScheduleError,
    branch_for_step,
    step_from_sigma,
    switch_step,
)

# --------------------------------------------------------------------------- branch_for_step


@pytest.mark.parametrize("schedule, switch_at, pattern, expected", [
    ("alternate", 0.9, "ST", "STSTSTSTST"),
    ("alternate_then_text", 0.9, "ST", "STSTSTSTST"[:9] + "T"),
    ("alternate_then_text", 0.5, "ST", "STSTSTTTTT"),
    ("alternate_then_text", 0.0, "ST", "TTTTTTTTTT"),
    ("alternate_then_text", 1.0, "ST", "STSTSTSTST"),
    ("scene_then_text", 0.7, "ST", "SSSSSSSTTT"),
    ("scene_then_text", 0.0, "ST", "TTTTTTTTTT"),
    ("scene_then_text", 1.0, "ST", "SSSSSSSSSS"),
    ("pattern", 0.9, "SST", "SSTSSTSSTS"),
    ("pattern", 0.9, " t s ", "TSTSTSTSTS"),
    ("pattern", 0.9, "S", "SSSSSSSSSS"),
])
def test_schedules_of_ten_steps(schedule, switch_at, pattern, expected):
    got = "".join(branch_for_step(i, 10, schedule, switch_at, pattern)[0].upper() for i in range(10))
    assert got == expected


def test_authors_benchmark_variant_goes_text_only_for_the_last_tenth():
    plan = PingPong(schedule="alternate_then_text", switch_at=0.9)
    assert plan.branches(50) == "ST" * 22 + "S" + "TTTTT"


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_single_step_is_documented_scene(schedule):
    assert branch_for_step(0, 1, schedule, 0.9, "ST") == "scene"


@pytest.mark.parametrize("kwargs, message", [
    ({"schedule": "zigzag"}, "schedule must be one of"),
    ({"schedule": "pattern", "pattern": ""}, "pattern is empty"),
    ({"schedule": "pattern", "pattern": "   "}, "pattern is empty"),
    ({"schedule": "pattern", "pattern": "SXT"}, "only contain S"),
    ({"schedule": "pattern", "pattern": "S1"}, "'1'"),
    ({"schedule": "alternate_then_text", "switch_at": 1.5}, "switch_at must be between 0 and 1"),
    ({"schedule": "scene_then_text", "switch_at": -0.1}, "switch_at must be between 0 and 1"),
    ({"schedule": "scene_then_text", "switch_at": float("nan")}, "switch_at"),
])
def test_bad_schedule_arguments_are_named(kwargs, message):
    args = {"schedule": "alternate", "switch_at": 0.9, "pattern": "ST", **kwargs}
    with pytest.raises(ScheduleError, match=message):
        branch_for_step(0, 4, **args)
    with pytest.raises(ValueError, match=message):
        PingPong(**args)


def test_pattern_is_ignored_unless_the_schedule_is_pattern():
    assert branch_for_step(1, 4, "alternate", 0.9, "xyz") == "text"


@pytest.mark.parametrize("step, total", [(-1, 4), (4, 4), (0, 0), (1.0, 4), (True, 4)])
def test_step_out_of_range(step, total):
    with pytest.raises(ScheduleError):
        branch_for_step(step, total)


@pytest.mark.parametrize("name, value", [("cfg", -1.0), ("text_cfg", float("inf")), ("cfg_start", float("nan"))])
def test_bad_cfg_values(name, value):
    with pytest.raises(ScheduleError, match=name):
        PingPong(**{name: value})


@pytest.mark.parametrize("total, switch_at, expected", [
    (10, 0.9, "STSTSTSTST"[:9] + "T"), (20, 0.9, "ST" * 9 + "TT"), (3, 0.9, "STS"), (7, 0.5, "STSTTTT"),
    (10, 0.7, "STSTSTSTTT"), (4, 0.25, "STTT"), (1, 0.5, "S"),
])
def test_alternate_then_text_switches_at_the_stated_step(total, switch_at, expected):
    """Written out by hand: text only from step ceil(switch_at * total) (0.7 * 10 is step 7, not 8)."""
    got = "".join(branch_for_step(i, total, "alternate_then_text", switch_at)[0].upper() for i in range(total))
    assert got == expected


@given(total=st.integers(1, 400), switch_at=st.floats(0.0, 1.0))
def test_switch_schedules_properties(total, switch_at):
    first_late = switch_step(total, switch_at)
    assert 0 <= first_late <= total
    # the switch step is the first step whose fraction reaches switch_at (up to float slack)
    assert first_late / total >= switch_at - 1e-9
    if first_late > 0:
        assert (first_late - 1) / total < switch_at
    for step in range(total):
        alt = branch_for_step(step, total, "alternate")
        att = branch_for_step(step, total, "alternate_then_text", switch_at)
        stt = branch_for_step(step, total, "scene_then_text", switch_at)
        assert alt == ("scene" if step % 2 == 0 else "text")
        if step >= first_late:
            assert att == stt == "text"
        else:
            assert att == alt and stt == "scene"


@given(pattern=st.text(alphabet="STst", min_size=1, max_size=12), total=st.integers(1, 100))
def test_pattern_repeats(pattern, total):
    letters = "".join(branch_for_step(i, total, "pattern", 0.5, pattern)[0].upper() for i in range(total))
    assert letters == (pattern.upper() * total)[:total]


@given(pattern=st.text(min_size=1, max_size=8))
def test_pattern_with_other_letters_is_refused(pattern):
    assume(set(pattern.upper().replace(" ", "")) - {"S", "T"} and not pattern.isspace())
    assume("".join(pattern.split()))
    with pytest.raises(ScheduleError):
        branch_for_step(0, 3, "pattern", 0.5, pattern)


# --------------------------------------------------------------------------- step_from_sigma


def _schedule(values):
    """Decreasing sigmas from hypothesis floats, ending in 0 like ComfyUI's schedulers."""
    sigmas = sorted(set(values), reverse=True)
    return sigmas + [0.0]


sigma_sets = st.lists(st.floats(0.01, 200.0), min_size=1, max_size=40).map(_schedule).filter(
    lambda s: all(a > b * (1 + 1e-3) for a, b in zip(s[:-2], s[1:-1])))


@given(sigmas=sigma_sets)
def test_grid_sigmas_map_to_their_own_step(sigmas):
    n = len(sigmas) - 1
    assert [step_from_sigma(s, sigmas) for s in sigmas[:-1]] == list(range(n))
    # the final sigma (0) is never evaluated, but if it were it belongs to the last step
    assert step_from_sigma(sigmas[-1], sigmas) == n - 1


@given(sigmas=sigma_sets, fraction=st.floats(0.001, 0.999), data=st.data())
def test_intermediate_sigmas_map_to_the_step_they_lie_in(sigmas, fraction, data):
    i = data.draw(st.integers(0, len(sigmas) - 2))
    hi, lo = sigmas[i], sigmas[i + 1]
    s = lo + (hi - lo) * fraction
    assume(not math.isclose(s, lo, rel_tol=2e-4) and not math.isclose(s, hi, rel_tol=2e-4))
    assert step_from_sigma(s, sigmas) == i


@given(sigmas=sigma_sets, wobble=st.floats(-3e-5, 3e-5), data=st.data())
def test_float_error_around_grid_sigmas_is_absorbed(sigmas, wobble, data):
    # a corrector evaluated "at sigmas[i+1]" after an exp/log round trip is still step i+1
    i = data.draw(st.integers(0, len(sigmas) - 2))
    assume(sigmas[i] > 0)
    assert step_from_sigma(sigmas[i] * (1 + wobble), sigmas) == i


@given(sigmas=sigma_sets, gamma=st.floats(0.001, 0.5))
def test_churn_above_the_first_sigma_is_step_zero(sigmas, gamma):
    assert step_from_sigma(sigmas[0] * (1 + gamma), sigmas) == 0


@given(sigmas=sigma_sets, keep=st.integers(1, 40))
def test_truncated_schedules_count_from_their_own_start(sigmas, keep):
    # denoise < 1 keeps the last steps + 1 sigmas: indices restart at 0
    tail = sigmas[-(min(keep, len(sigmas) - 1) + 1):]
    assert [step_from_sigma(s, tail) for s in tail[:-1]] == list(range(len(tail) - 1))


@given(sigmas=sigma_sets)
def test_tensors_and_per_sample_sigmas_are_accepted(sigmas):
    t = torch.tensor(sigmas, dtype=torch.float32)
    for i, s in enumerate(t[:-1]):
        assert step_from_sigma(s * torch.ones(3), t) == i


def test_nonzero_final_sigma_and_heun_corrector():
    sigmas = [10.0, 5.0, 2.0, 1.0]  # e.g. KSamplerAdvanced stopping early without full denoise
    assert step_from_sigma(1.0, sigmas) == 2  # heun's last corrector at sigmas[-1]
    assert step_from_sigma(0.5, sigmas) == 2
    assert step_from_sigma(5.0, sigmas) == 1  # heun's first corrector is guided like step 1


def test_increasing_sigmas_work_too():
    sigmas = [0.0, 1.0, 3.0, 9.0]  # FlipSigmas / unsampling
    assert [step_from_sigma(s, sigmas) for s in (0.0, 0.5, 1.0, 2.0, 3.0, 8.9)] == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("sigmas, message", [([1.0], "at least 2"), ([], "at least 2"),
                                             ([[1.0, 0.0]], "one-dimensional"),
                                             ([1.0, float("nan"), 0.0], "finite")])
def test_bad_sigma_lists(sigmas, message):
    with pytest.raises(ScheduleError, match=message):
        step_from_sigma(0.5, sigmas)


def test_bad_sigma_value():
    with pytest.raises(ScheduleError, match="finite"):
        step_from_sigma(float("nan"), [1.0, 0.0])


# --------------------------------------------------------------------------- PingPong.choose


def test_choose_combines_step_branch_and_cfg():
    plan = PingPong(schedule="alternate", cfg=5.0, text_cfg=9.0, cfg_start=0.0)
    sigmas = torch.tensor([8.0, 4.0, 2.0, 1.0, 0.0])
    got = [(c.step, c.branch, c.cfg) for c in (plan.choose(torch.tensor([s]), sigmas) for s in (8.0, 3.0, 2.0, 1.0))]
    assert got == [(0, "scene", 5.0), (1, "text", 9.0), (2, "scene", 5.0), (3, "text", 9.0)]


def test_cfg_ramp_runs_from_cfg_start_to_each_branch_scale():
    plan = PingPong(schedule="alternate", cfg=7.5, text_cfg=9.5, cfg_start=4.0)
    assert plan.cfg_for("scene", 0, 5) == pytest.approx(4.0)
    assert plan.cfg_for("scene", 4, 5) == pytest.approx(7.5)
    assert plan.cfg_for("text", 2, 5) == pytest.approx(4.0 + (9.5 - 4.0) * 0.5)
    assert PingPong(cfg=7.5, cfg_start=0.0).cfg_for("scene", 0, 5) == 7.5
    assert PingPong(cfg=7.5, cfg_start=4.0).cfg_for("scene", 0, 1) == 7.5


@settings(max_examples=50)
@given(cfg=st.floats(0, 30), text_cfg=st.floats(0, 30), start=st.floats(0.01, 30), total=st.integers(2, 60))
def test_cfg_ramp_is_monotone_between_its_ends(cfg, text_cfg, start, total):
    plan = PingPong(cfg=cfg, text_cfg=text_cfg, cfg_start=start)
    for branch, end in (("scene", cfg), ("text", text_cfg)):
        values = [plan.cfg_for(branch, i, total) for i in range(total)]
        assert values[0] == pytest.approx(start) and values[-1] == pytest.approx(end)
        diffs = [b - a for a, b in zip(values, values[1:])]
        assert all(d >= -1e-9 for d in diffs) or all(d <= 1e-9 for d in diffs)
