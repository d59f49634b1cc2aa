"""Ping-pong guider and KSampler nodes against the ComfyUI stand-in (tests/comfy_standin)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import torch

LABELS = {1.0: "scene+", 2.0: "scene-", 3.0: "text+", 4.0: "text-"}


def cond(value: float):
    """A CONDITIONING whose embedding is filled with `value`, so the toy model can tell them apart."""
    return [[torch.full((1, 77, 8), value), {"pooled_output": None}]]


class ToyModel:
    """Denoiser stand-in: records which conds each evaluation saw."""

    def __init__(self):
        self.seen: list[tuple[float, str]] = []

    def predict(self, x, timestep, conds):
        value = float(conds[0]["cross_attn"].flatten()[0])
        self.seen.append((round(float(timestep[0]), 5), LABELS[value]))
        return x * 0.5 + value * 0.01


class ToyPatcher:
    def __init__(self):
        self.model = ToyModel()
        self.model_options = {"transformer_options": {}}
        self.load_device = torch.device("cpu")

    def get_model_object(self, name):
        if name == "latent_format":
            return SimpleNamespace(latent_channels=4)
        if name == "model_sampling":
            return SimpleNamespace(sigma_min=0.03, sigma_max=14.6)
        raise KeyError(name)


@pytest.fixture
def pp(pack):
    import comfy.samplers
    import latent_preview

    comfy.samplers.sampling_calls.clear()
    latent_preview.prepared.clear()
    return pack.nodes.pingpong


def run_ksampler(pp, patcher, *, steps=6, cfg=5.0, text_cfg=9.0, sampler_name="euler", denoise=1.0,
                 schedule="alternate", switch_at=0.9, pattern="ST", seed=3, latent=None, **optional):
    latent = latent or {"samples": torch.zeros(1, 4, 8, 8)}
    conds = {"text_positive": cond(3.0), "text_negative": cond(4.0), "cfg_start": 0.0}  # no ramp unless asked
    conds.update(optional)
    return pp.PingPongKSampler().sample(patcher, seed, steps, cfg, sampler_name, "simple", cond(1.0), cond(2.0),
                                        latent, denoise, text_cfg, schedule, switch_at, pattern, **conds)[0]


def pairs(patcher):
    """(positive label, negative label) per model evaluation, from what the model saw."""
    seen = [label for _, label in patcher.model.seen]
    return list(zip(seen[0::2], seen[1::2]))


def test_ksampler_alternates_pairs_and_cfg(pp):
    import comfy.samplers

    patcher = ToyPatcher()
    out = run_ksampler(pp, patcher)
    assert out["samples"].shape == (1, 4, 8, 8)
    scene, text = ("scene+", "scene-"), ("text+", "text-")
    assert pairs(patcher) == [scene, text] * 3
    assert [c["cond_scale"] for c in comfy.samplers.sampling_calls] == [5.0, 9.0] * 3


@pytest.mark.parametrize("schedule, switch_at, pattern, expected", [
    ("alternate_then_text", 0.5, "ST", "STSTTT"),
    ("scene_then_text", 0.5, "ST", "SSSTTT"),
    ("pattern", 0.5, "SST", "SSTSST"),
])
def test_ksampler_follows_each_schedule(pp, schedule, switch_at, pattern, expected):
    patcher = ToyPatcher()
    run_ksampler(pp, patcher, schedule=schedule, switch_at=switch_at, pattern=pattern)
    assert "".join(p[0][0].upper() for p in pairs(patcher)) == expected


def test_heun_corrector_takes_the_next_steps_pair(pp):
    patcher = ToyPatcher()
    run_ksampler(pp, patcher, steps=4, sampler_name="heun")
    # evaluations: step0, corrector@sigma1, step1, corrector@sigma2, step2, corrector@sigma3, step3
    assert "".join(p[0][0].upper() for p in pairs(patcher)) == "STTSSTT"


def test_denoise_counts_the_steps_that_run(pp):
    patcher = ToyPatcher()
    run_ksampler(pp, patcher, steps=4, denoise=0.5, latent={"samples": torch.ones(1, 4, 8, 8)})
    assert "".join(p[0][0].upper() for p in pairs(patcher)) == "STST"
    first_sigma = patcher.model.seen[0][0]
    assert first_sigma < 14.6 * 0.5  # the truncated schedule starts low, still step 0 (scene)


def test_cfg_one_skips_the_uncond_like_comfyui(pp):
    import comfy.samplers

    patcher = ToyPatcher()
    run_ksampler(pp, patcher, steps=2, cfg=1.0, text_cfg=4.0)
    calls = comfy.samplers.sampling_calls
    assert calls[0]["uncond"] is None and calls[1]["uncond"] is not None


def test_cfg_ramp_reaches_the_sampling_function(pp):
    import comfy.samplers

    run_ksampler(pp, ToyPatcher(), steps=5, cfg=7.5, text_cfg=7.5, cfg_start=4.0)
    scales = [c["cond_scale"] for c in comfy.samplers.sampling_calls]
    assert scales == pytest.approx([4.0, 4.875, 5.75, 6.625, 7.5])


def test_missing_text_conds_use_scene_conds_and_say_so(pp, caplog):
    patcher = ToyPatcher()
    with caplog.at_level(logging.INFO):
        run_ksampler(pp, patcher, text_positive=None, text_negative=None)
    assert set(pairs(patcher)) == {("scene+", "scene-")}
    assert "no text_positive/text_negative connected" in caplog.text


def test_missing_text_negative_falls_back_to_scene_negative(pp, caplog):
    patcher = ToyPatcher()
    with caplog.at_level(logging.INFO):
        run_ksampler(pp, patcher, steps=2, text_negative=None)
    assert pairs(patcher) == [("scene+", "scene-"), ("text+", "scene-")]
    assert "text_negative not connected" in caplog.text


def test_text_conds_carry_prompt_type(pp):
    guider = pp.make_guider(ToyPatcher(), cond(1.0), cond(2.0), 5.0, 5.0, "alternate", 0.9, "ST",
                            cond(3.0), cond(4.0))
    assert [c["prompt_type"] for c in guider.original_conds["text_positive"]] == ["positive"]
    assert [c["prompt_type"] for c in guider.original_conds["text_negative"]] == ["negative"]
    assert "prompt_type" not in guider.original_conds["positive"][0]


@pytest.mark.parametrize("kwargs, message", [
    ({"schedule": "pattern", "pattern": "SXT"}, "only contain S"),
    ({"schedule": "pattern", "pattern": ""}, "pattern is empty"),
    ({"schedule": "scene_then_text", "switch_at": 1.2}, "switch_at"),
])
def test_bad_settings_fail_before_sampling(pp, kwargs, message):
    patcher = ToyPatcher()
    with pytest.raises(ValueError, match=message):
        run_ksampler(pp, patcher, **kwargs)
    assert patcher.model.seen == []


def test_single_step_runs_the_scene_pair_and_warns(pp, caplog):
    patcher = ToyPatcher()
    with caplog.at_level(logging.WARNING):
        run_ksampler(pp, patcher, steps=1)
    assert pairs(patcher) == [("scene+", "scene-")]
    assert "single step cannot alternate" in caplog.text


def test_progress_bar_and_preview_callback_like_ksampler(pp):
    import comfy.utils
    import latent_preview

    patcher = ToyPatcher()
    run_ksampler(pp, patcher, steps=4)
    assert latent_preview.prepared == [(patcher, 4)]
    assert comfy.utils.created_bars[-1].updates == [1, 2, 3, 4]


def test_interrupt_from_the_progress_hook_stops_sampling(pp, monkeypatch):
    import comfy.model_management as mm
    import comfy.utils

    def hook(value, total, preview, node_id=None):
        if value == 2:
            mm.interrupt_current_processing()
        mm.throw_exception_if_processing_interrupted()

    monkeypatch.setattr(comfy.utils, "PROGRESS_BAR_HOOK", hook)
    patcher = ToyPatcher()
    with pytest.raises(mm.InterruptProcessingException):
        run_ksampler(pp, patcher, steps=6)
    assert len(pairs(patcher)) == 2


def test_seed_and_batch_index_drive_the_noise(pp):
    def go(seed, latent=None):
        return run_ksampler(pp, ToyPatcher(), steps=2, seed=seed, latent=latent)["samples"]

    assert torch.equal(go(7), go(7))
    assert not torch.equal(go(7), go(8))
    batch = {"samples": torch.zeros(2, 4, 8, 8), "batch_index": [1, 1]}
    out = go(7, batch)
    assert torch.equal(out[0], out[1])  # same batch index -> same noise, like ComfyUI


def test_latent_keys_pass_through(pp):
    latent = {"samples": torch.zeros(1, 4, 8, 8), "batch_index": [0], "downscale_ratio_spacial": 8}
    out = run_ksampler(pp, ToyPatcher(), steps=2, latent=latent)
    assert out["batch_index"] == [0] and "downscale_ratio_spacial" not in out
    assert "samples" in latent and latent["samples"].abs().sum() == 0  # input untouched


def test_guider_node_works_with_custom_sigmas(pp):
    import comfy.samplers

    patcher = ToyPatcher()
    (guider,) = pp.PingPongGuiderNode().get_guider(patcher, cond(1.0), cond(2.0), 5.0, 6.0, "pattern", 0.5, "TTS",
                                                   text_positive=cond(3.0), text_negative=cond(4.0))
    sigmas = torch.tensor([9.0, 6.0, 3.0, 1.0, 0.0])  # SamplerCustomAdvanced passes any SIGMAS
    out = guider.sample(torch.randn(1, 4, 8, 8), torch.zeros(1, 4, 8, 8), comfy.samplers.sampler_object("euler"),
                        sigmas, seed=1)
    assert out.shape == (1, 4, 8, 8)
    assert "".join(p[0][0].upper() for p in pairs(patcher)) == "TTST"
    assert [s for s, _ in patcher.model.seen[0::2]] == [9.0, 6.0, 3.0, 1.0]


def test_guider_without_sample_sigmas_says_why(pp):
    guider = pp.make_guider(ToyPatcher(), cond(1.0), cond(2.0), 5.0, 5.0, "alternate", 0.9, "ST")
    guider.inner_model, guider.conds = ToyModel(), {}
    with pytest.raises(RuntimeError, match="sample_sigmas"):
        guider.predict_noise(torch.zeros(1, 4, 8, 8), torch.tensor([1.0]), model_options={})


def test_node_interfaces(pp):
    import comfy.samplers

    ks = pp.PingPongKSampler.INPUT_TYPES()
    for name in ("model", "seed", "steps", "cfg", "sampler_name", "scheduler", "scene_positive", "scene_negative",
                 "latent_image", "denoise", "text_cfg", "schedule", "switch_at", "pattern"):
        assert name in ks["required"], name
    assert set(ks["optional"]) == {"text_positive", "text_negative", "cfg_start"}
    assert ks["required"]["sampler_name"][0] == comfy.samplers.KSampler.SAMPLERS
    assert pp.PingPongKSampler.RETURN_TYPES == ("LATENT",)
    gd = pp.PingPongGuiderNode.INPUT_TYPES()
    assert set(gd["required"]) == {"model", "scene_positive", "scene_negative", "cfg", "text_cfg", "schedule",
                                   "switch_at", "pattern"}
    assert pp.PingPongGuiderNode.RETURN_TYPES == ("GUIDER",)
    assert pp.NODE_DISPLAY_NAME_MAPPINGS == {"GlyphSR_PingPongGuider": "GlyphSR Ping-Pong Guider",
                                             "GlyphSR_PingPongKSampler": "GlyphSR Ping-Pong KSampler"}


def test_pack_registers_the_nodes(pack):
    assert {"GlyphSR_PingPongGuider", "GlyphSR_PingPongKSampler"} <= set(pack.NODE_CLASS_MAPPINGS)


def test_node_cli_and_core_share_one_set_of_defaults(pp, pack):
    """The same image with default settings takes the same path in ComfyUI and headless."""
    from glyphsr_core import defaults
    from glyphsr_core.cli import build_parser
    from glyphsr_core.sampling.pingpong import PingPong

    def widget_defaults(node):
        inputs = node.INPUT_TYPES()
        return {name: spec[1]["default"] for group in ("required", "optional") for name, spec in inputs[group].items()
                if len(spec) > 1 and "default" in spec[1]}

    ksampler = widget_defaults(pp.PingPongKSampler)
    guider = widget_defaults(pp.PingPongGuiderNode)
    cli = build_parser().parse_args(["upscale", "in.png", "-o", "out.png", "--base", "b"])
    plan = PingPong()
    expected = {"steps": 50, "cfg": 7.5, "text_cfg": 7.5, "cfg_start": 4.0, "schedule": "alternate_then_text",
                "switch_at": 0.9, "pattern": "ST"}
    for name, value in expected.items():
        assert getattr(defaults, name.upper()) == value
        assert ksampler[name] == value, name
        if name != "steps":
            assert guider[name] == value and getattr(plan, name) == value, name
        cli_value = getattr(cli, name)
        assert (cli.cfg if name == "text_cfg" and cli_value is None else cli_value) == value, name
    prompts = widget_defaults(pack.nodes.build_prompts.BuildPrompts)
    assert prompts["max_words"] == cli.max_words == defaults.MAX_WORDS
