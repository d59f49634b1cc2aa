"""Ping-pong sampling inside a real ComfyUI server, with the tiny SD1.5 checkpoint.

- Equivalence: with the same pair on scene and text steps (and text_cfg = cfg) the ping-pong
  KSampler reproduces ComfyUI's KSampler exactly, and the ping-pong guider reproduces CFGGuider
  under SamplerCustomAdvanced.
- Recording: a test-only UNet wrapper (tests/integration/test_packs/glyphsr_test_recorder) logs
  which prompt embedding reached the UNet at every model evaluation; each schedule must show the
  expected pair at every step, for one- and two-evaluation samplers and for denoise < 1.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from comfy_client import Graph

SEED, STEPS, CFG = 1234, 4, 5.0
PROMPTS = {"scene_positive": "a brick shop front at dusk", "scene_negative": "blurry, low quality",
           "text_positive": "the word OPEN in red letters", "text_negative": "misspelled, garbled text"}


def _load_latent(result, node) -> torch.Tensor:
    (path,) = result.files(node.id, "latents")
    return load_file(str(path))["latent_tensor"]


def _encode(g: Graph, ckpt, text: str):
    return g.node("CLIPTextEncode", text=text, clip=ckpt.out(1))


@pytest.mark.parametrize("sampler_name, scheduler, denoise", [
    ("euler", "normal", 1.0),
    ("dpmpp_2s_ancestral", "karras", 1.0),  # uses the seed for its ancestral noise
    ("heun", "normal", 0.6),
])
def test_identical_pairs_reproduce_ksampler(comfy_server, tiny_sd15, unique_prefix, sampler_name, scheduler, denoise):
    g = Graph(comfy_server)
    ckpt = g.node("CheckpointLoaderSimple", ckpt_name=tiny_sd15)
    pos, neg = _encode(g, ckpt, PROMPTS["scene_positive"]), _encode(g, ckpt, PROMPTS["scene_negative"])
    other = _encode(g, ckpt, PROMPTS["text_positive"])
    latent = g.node("EmptyLatentImage", width=64, height=64, batch_size=1)
    common = dict(model=ckpt.out(0), seed=SEED, steps=STEPS, cfg=CFG, sampler_name=sampler_name,
                  scheduler=scheduler, latent_image=latent.out(0), denoise=denoise)
    builtin = g.node("KSampler", positive=pos.out(0), negative=neg.out(0), **common)
    pingpong_args = dict(scene_positive=pos.out(0), scene_negative=neg.out(0), text_negative=neg.out(0),
                         text_cfg=CFG, schedule="alternate", switch_at=0.9, pattern="ST", cfg_start=0.0, **common)
    same = g.node("GlyphSR_PingPongKSampler", text_positive=pos.out(0), **pingpong_args)
    differs = g.node("GlyphSR_PingPongKSampler", text_positive=other.out(0), **pingpong_args)

    # the same through SamplerCustomAdvanced: CFGGuider vs the ping-pong guider
    noise = g.node("RandomNoise", noise_seed=SEED)
    sampler = g.node("KSamplerSelect", sampler_name=sampler_name)
    sigmas = g.node("BasicScheduler", model=ckpt.out(0), scheduler=scheduler, steps=STEPS, denoise=denoise)
    cfg_guider = g.node("CFGGuider", model=ckpt.out(0), positive=pos.out(0), negative=neg.out(0), cfg=CFG)
    pp_guider = g.node("GlyphSR_PingPongGuider", model=ckpt.out(0), scene_positive=pos.out(0),
                       scene_negative=neg.out(0), text_positive=pos.out(0), text_negative=neg.out(0), cfg=CFG,
                       text_cfg=CFG, schedule="alternate", switch_at=0.9, pattern="ST", cfg_start=0.0)
    custom = {name: g.node("SamplerCustomAdvanced", noise=noise.out(0), guider=guider.out(0), sampler=sampler.out(0),
                           sigmas=sigmas.out(0), latent_image=latent.out(0))
              for name, guider in (("cfg", cfg_guider), ("pp", pp_guider))}

    saves = {name: g.node("SaveLatent", samples=node.out(0), filename_prefix=f"{unique_prefix}_{name}")
             for name, node in (("builtin", builtin), ("same", same), ("differs", differs),
                                ("custom_cfg", custom["cfg"]), ("custom_pp", custom["pp"]))}
    result = comfy_server.queue(g)
    got = {name: _load_latent(result, node) for name, node in saves.items()}

    assert got["builtin"].shape == (1, 4, 8, 8) and torch.isfinite(got["builtin"]).all()
    assert torch.equal(got["same"], got["builtin"])
    assert torch.equal(got["custom_pp"], got["custom_cfg"])
    # a different text prompt must change the result, or the comparison above proves nothing
    assert (got["differs"] - got["builtin"]).abs().max() > 1e-3


# ----------------------------------------------------------------------------------------------
# recording: which pair reached the UNet at every evaluation

SCHEDULE_CASES = {  # name -> (schedule, switch_at, pattern, expected pair per step for 4 steps)
    "alternate": ("alternate", 0.9, "ST", "STST"),
    "alternate_then_text": ("alternate_then_text", 0.5, "ST", "STTT"),
    "scene_then_text": ("scene_then_text", 0.5, "ST", "SSTT"),
    "pattern": ("pattern", 0.5, "SST", "SSTS"),
}
ONE_EVAL = list(range(STEPS))
# heun's corrector and dpmpp_2s_ancestral's second stage (eta 1) are evaluated at sigmas[i+1],
# which the guider gives to step i+1; the last step (down to sigma 0) has a single evaluation
TWO_EVALS = [0] + [i for i in range(1, STEPS) for _ in (0, 1)]
EVAL_STEPS = {"euler": ONE_EVAL, "dpmpp_2m": ONE_EVAL, "dpmpp_2s_ancestral": TWO_EVALS, "heun": TWO_EVALS}


def _evaluations(path) -> list[dict]:
    """Group the wrapper's UNet calls into model evaluations (one cond + one uncond each)."""
    evaluations, current = [], None
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if current is None:
            current = {"sigma": record["sigma"], "sample_sigmas": record["sample_sigmas"], "chunks": {}}
        for kind, label in record["chunks"]:
            current["chunks"][kind] = label
        if {0, 1} <= set(current["chunks"]):
            evaluations.append(current)
            current = None
    assert current is None, "a model evaluation without its uncond half"
    return evaluations


@pytest.mark.parametrize("sampler_name, denoise", [
    ("euler", 1.0), ("dpmpp_2m", 1.0), ("dpmpp_2s_ancestral", 1.0), ("heun", 1.0), ("euler", 0.5), ("heun", 0.6),
])
def test_recorded_pair_at_every_step(comfy_server, tiny_sd15, unique_prefix, tmp_path, sampler_name, denoise):
    g = Graph(comfy_server)
    ckpt = g.node("CheckpointLoaderSimple", ckpt_name=tiny_sd15)
    conds = {name: _encode(g, ckpt, text).out(0) for name, text in PROMPTS.items()}
    latent = g.node("EmptyLatentImage", width=64, height=64, batch_size=1)
    paths = {}
    for case, (schedule, switch_at, pattern, _expected) in SCHEDULE_CASES.items():
        paths[case] = tmp_path / f"{case}.jsonl"
        recorder = g.node("GlyphSRTest_RecordingModel", model=ckpt.out(0), path=str(paths[case]), **conds)
        sampled = g.node("GlyphSR_PingPongKSampler", model=recorder.out(0), seed=SEED, steps=STEPS, cfg=CFG,
                         text_cfg=CFG + 1.0, sampler_name=sampler_name, scheduler="karras", latent_image=latent.out(0),
                         denoise=denoise, schedule=schedule, switch_at=switch_at, pattern=pattern, **conds)
        g.node("SaveLatent", samples=sampled.out(0), filename_prefix=f"{unique_prefix}_{case}")
    comfy_server.queue(g)

    for case, (_s, _w, _p, expected) in SCHEDULE_CASES.items():
        evaluations = _evaluations(paths[case])
        steps = EVAL_STEPS[sampler_name]
        assert len(evaluations) == len(steps), (case, [e["sigma"] for e in evaluations])
        sigmas = evaluations[0]["sample_sigmas"]
        assert len(sigmas) == STEPS + 1 and sigmas[-1] == 0.0
        if denoise < 1.0:  # truncated schedule: starts well below SD1.5's sigma_max (14.61)
            assert sigmas[0] < 0.9 * 14.61
        else:
            assert math.isclose(sigmas[0], 14.61, rel_tol=1e-3)
        for k, (evaluation, step) in enumerate(zip(evaluations, steps)):
            assert math.isclose(evaluation["sigma"], sigmas[step], rel_tol=1e-3), (case, k, evaluation["sigma"], step)
            branch = "scene" if expected[step] == "S" else "text"
            assert evaluation["chunks"] == {0: f"{branch}_positive", 1: f"{branch}_negative"}, (case, k, step)


def _records(path, kind: str) -> list[dict]:
    return [r for r in map(json.loads, path.read_text().splitlines()) if r["kind"] == kind]


def test_text_cfg_and_cfg_start_reach_every_evaluation(comfy_server, tiny_sd15, unique_prefix, tmp_path):
    """The CFG scale ComfyUI's sampling_function applied, recorded per evaluation by a post-CFG hook."""
    g = Graph(comfy_server)
    ckpt = g.node("CheckpointLoaderSimple", ckpt_name=tiny_sd15)
    conds = {name: _encode(g, ckpt, text).out(0) for name, text in PROMPTS.items()}
    latent = g.node("EmptyLatentImage", width=64, height=64, batch_size=1)
    paths = {"ramp": tmp_path / "ramp.jsonl", "flat": tmp_path / "flat.jsonl"}
    for case, cfg_start in (("ramp", 2.0), ("flat", 0.0)):
        model = g.node("GlyphSRTest_RecordSampling", model=ckpt.out(0), path=str(paths[case]))
        sampled = g.node("GlyphSR_PingPongKSampler", model=model.out(0), seed=SEED, steps=4, cfg=6.0, text_cfg=9.0,
                         cfg_start=cfg_start, sampler_name="euler", scheduler="normal", latent_image=latent.out(0),
                         denoise=1.0, schedule="alternate", switch_at=0.9, pattern="ST", **conds)
        g.node("SaveLatent", samples=sampled.out(0), filename_prefix=f"{unique_prefix}_{case}")
    comfy_server.queue(g)

    # alternate over 4 steps: scene (cfg 6), text (text_cfg 9), scene, text; the ramp starts at 2.0 and
    # reaches each pair's own scale at the last step: 2 + (6 - 2) * i / 3 on scene steps, 2 + (9 - 2) * i / 3 on text
    ramp = [r["cond_scale"] for r in _records(paths["ramp"], "cfg")]
    assert ramp == pytest.approx([2.0, 2.0 + 7.0 / 3, 2.0 + 8.0 / 3, 9.0], rel=1e-6)
    assert [r["cond_scale"] for r in _records(paths["flat"], "cfg")] == [6.0, 9.0, 6.0, 9.0]
    # every evaluation ran cond and uncond in one UNet call (CFG on)
    assert all(r["batch"] == 2 for r in _records(paths["ramp"], "unet"))


def test_cancel_stops_the_pingpong_ksampler(comfy_server, tiny_sd15, unique_prefix):
    """POST /interrupt cuts a long Ping-Pong KSampler run short, like ComfyUI's KSampler."""
    g = Graph(comfy_server)
    model = g.node("CheckpointLoaderSimple", ckpt_name=tiny_sd15)
    cond = g.node("CLIPTextEncode", text="x", clip=model.out(1))
    latent = g.node("EmptyLatentImage", width=64, height=64, batch_size=1)
    sampled = g.node("GlyphSR_PingPongKSampler", model=model.out(0), scene_positive=cond.out(0),
                     scene_negative=cond.out(0), latent_image=latent.out(0), seed=1, steps=2000, cfg=1.0, text_cfg=1.0,
                     cfg_start=0.0, sampler_name="euler", scheduler="normal", denoise=1.0, schedule="alternate",
                     switch_at=0.9, pattern="ST")
    g.node("SaveLatent", samples=sampled.out(0), filename_prefix=unique_prefix)

    err, seconds = comfy_server.queue_cancelled_at_first_progress(g)
    assert seconds < 120
    assert err.node_type == "GlyphSR_PingPongKSampler"


def test_each_image_of_a_list_is_sampled_with_its_own_words(comfy_server, tiny_sd15, unique_prefix, tmp_path):
    """Per-image words in ComfyUI: Build Prompts gives one prompt set per image (a list), and the sampler
    runs once per item (ComfyUI's list mapping; a CONDITIONING cannot differ per item of one latent batch).
    The prompt embedding that reached the UNet in run i is the encoding of image i's text prompt."""
    from glyphsr_core.text.prompts import build_prompts
    from glyphsr_core.text.text_input import parse_text_input

    words = ('[{"width": 64, "height": 64, "regions": [{"text": "OPEN", "box": [0.1, 0.1, 0.5, 0.4]}]},'
             ' {"width": 64, "height": 64, "regions": [{"text": "(SALE)", "box": [0.5, 0.6, 0.9, 0.9]}]}]')
    expected = [build_prompts("a sign", r, escape_weights=True).text_positive for r in parse_text_input(words, 64, 64)]
    assert expected[0] != expected[1]

    g = Graph(comfy_server)
    ckpt = g.node("CheckpointLoaderSimple", ckpt_name=tiny_sd15)
    text = g.node("GlyphSR_TextFromString", text=words, width=64, height=64)
    prompts = g.node("GlyphSR_BuildPrompts", caption="a sign", text=text.out(0))
    enc = [g.node("CLIPTextEncode", text=prompts.out(k), clip=ckpt.out(1)) for k in range(4)]
    latent = g.node("EmptyLatentImage", width=64, height=64, batch_size=1)
    text_only = dict(seed=SEED, steps=1, cfg=5.0, text_cfg=5.0, cfg_start=0.0, sampler_name="euler",
                     scheduler="normal", latent_image=latent.out(0), denoise=1.0, schedule="pattern", switch_at=0.9,
                     pattern="T")
    paths = {"list": tmp_path / "list.jsonl", 0: tmp_path / "ref0.jsonl", 1: tmp_path / "ref1.jsonl"}
    model = g.node("GlyphSRTest_RecordSampling", model=ckpt.out(0), path=str(paths["list"]))
    sampled = g.node("GlyphSR_PingPongKSampler", model=model.out(0), scene_positive=enc[0].out(0),
                     scene_negative=enc[1].out(0), text_positive=enc[2].out(0), text_negative=enc[3].out(0),
                     **text_only)
    g.node("SaveLatent", samples=sampled.out(0), filename_prefix=f"{unique_prefix}_list")
    negative = g.node("CLIPTextEncode", text="blurry", clip=ckpt.out(1))  # one item: one run per reference
    for i in (0, 1):  # references: image i's text prompt typed in directly
        ref = g.node("CLIPTextEncode", text=expected[i], clip=ckpt.out(1))
        model_i = g.node("GlyphSRTest_RecordSampling", model=ckpt.out(0), path=str(paths[i]))
        out = g.node("GlyphSR_PingPongKSampler", model=model_i.out(0), scene_positive=ref.out(0),
                     scene_negative=negative.out(0), text_positive=ref.out(0), text_negative=negative.out(0),
                     **text_only)
        g.node("SaveLatent", samples=out.out(0), filename_prefix=f"{unique_prefix}_ref{i}")
    comfy_server.queue(g, timeout=1800)  # four sampler runs

    runs = _records(paths["list"], "unet")
    assert len(runs) == 2, runs  # one run of one step per image
    for i in (0, 1):
        reference = _records(paths[i], "unet")[0]["crossattn_sums"]["0"]
        assert runs[i]["crossattn_sums"]["0"] == reference, (i, runs[i])
    assert runs[0]["crossattn_sums"]["0"] != runs[1]["crossattn_sums"]["0"]
