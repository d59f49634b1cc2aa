"""Text-branch training on tiny random models and a 16-sample corpus made with make-corpus (CPU).

One short run is shared: it checks that only the text branch learns, that the checkpoint resumes
with the same step count, optimizer state and result, and that the saved bundles validate and load
back into diffusers with identical outputs.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("accelerate")

from glyphsr_core.diffusion.models import controlnet_from_state_dict
from glyphsr_core.training.text_branch_config import ConfigError, config_from_dict, config_to_dict, load_config
from glyphsr_core.training.text_branch_data import CorpusDataset, StepBatchSampler, collate, split_corpus
from glyphsr_core.training.text_branch import load_models, prompt_encoder, train, training_loss
from glyphsr_core.tscontrolnet import read_bundle, validate_bundle

STEPS = 4


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from glyphsr_core.data.corpus import CorpusConfig, make_corpus

    out = tmp_path_factory.mktemp("corpus")
    make_corpus(CorpusConfig(out=out, size=128, scales=(4,), seed=3), 16, workers=1)
    return out


def _config(corpus, out_dir, **train):
    raw = {
        "model": {"tiny": "sd15", "glyph_channel": True},
        "data": {"corpus": str(corpus), "scales": [4], "resolution": 64, "validation_samples": 2, "num_workers": 0},
        "train": {"output_dir": str(out_dir), "max_steps": STEPS, "batch_size": 2, "learning_rate": 1e-3,
                  "lr_scheduler": "constant", "lr_warmup_steps": 0, "checkpointing_steps": 2,
                  "save_bundle_steps": STEPS, "text_mask_weight": 2.0, "log_every": 1, "seed": 0, **train},
        "validation": {"every": STEPS, "samples": 1, "steps": 2, "prompt_words": "gt", "save_images": True},
    }
    return config_from_dict(raw)


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.fixture(scope="module")
def run(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    config = _config(corpus, out)
    models = load_models(config)
    before = {"unet": _state(models.base.unet), "vae": _state(models.base.vae),
              "text_encoder": _state(models.base.text_encoder), "scene": _state(models.scene),
              "text": _state(models.text)}
    result = train(config, models=models)
    return config, models, before, result, out


@pytest.mark.slow
def test_only_the_text_branch_changes(run):
    _, models, before, result, _ = run
    assert result.step == STEPS and len(result.losses) == STEPS
    for name, module in (("unet", models.base.unet), ("vae", models.base.vae),
                         ("text_encoder", models.base.text_encoder), ("scene", models.scene)):
        after = module.state_dict()
        assert all(torch.equal(before[name][k], after[k]) for k in after), f"{name} changed"
    text_after = models.text.state_dict()
    changed = [k for k in text_after if not torch.equal(before["text"][k], text_after[k])]
    assert len(changed) > len(text_after) // 2
    assert "controlnet_cond_embedding.conv_in.weight" in changed  # incl. the zero-initialised glyph channel


@pytest.mark.slow
def test_outputs_log_validation_and_bundles(run):
    _, models, _, result, out = run
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    steps = [r for r in log if "loss" in r]
    assert [r["step"] for r in steps] == list(range(1, STEPS + 1))
    assert all(r["samples_per_s"] > 0 and r["peak_memory_mb"] > 0 for r in steps)
    validation = [r for r in log if r.get("validation")]
    assert len(validation) == 1 and 0.0 <= validation[0]["f1"] <= 1.0 and validation[0]["samples"] == 1
    assert len(list((out / "validation" / f"step{STEPS:06d}").glob("*.png"))) == 1
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-2", "checkpoint-4"]
    assert set(result.bundles) == {"text", "full"}


@pytest.mark.slow
def test_bundles_validate_and_load_back_with_identical_outputs(run):
    _, models, _, result, _ = run
    text_only, full = read_bundle(result.bundles["text"]), read_bundle(result.bundles["full"])
    validate_bundle(text_only)
    validate_bundle(full)
    assert text_only.scene is None and full.scene is not None
    assert text_only.text_hint == full.text_hint == "lq+glyph" and text_only.beta == 0.5
    loaded = controlnet_from_state_dict(text_only.text, models.base.unet).eval()
    scene = controlnet_from_state_dict(full.scene, models.base.unet).eval()
    trained = models.text.eval()
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(1, 4, 8, 8, generator=generator)
    hint = torch.rand(1, 4, 64, 64, generator=generator)
    context = torch.randn(1, 77, 32, generator=generator)
    with torch.no_grad():
        expected = trained(sample, 10, encoder_hidden_states=context, controlnet_cond=hint, return_dict=False)
        got = loaded(sample, 10, encoder_hidden_states=context, controlnet_cond=hint, return_dict=False)
        scene_expected = models.scene(sample, 10, encoder_hidden_states=context, controlnet_cond=hint[:, :3],
                                      return_dict=False)
        scene_got = scene(sample, 10, encoder_hidden_states=context, controlnet_cond=hint[:, :3], return_dict=False)
    for a, b in zip(list(expected[0]) + [expected[1]], list(got[0]) + [got[1]]):
        assert torch.equal(a, b)
    for a, b in zip(list(scene_expected[0]) + [scene_expected[1]], list(scene_got[0]) + [scene_got[1]]):
        assert torch.equal(a, b)


@pytest.mark.slow
def test_resume_continues_with_the_same_steps_optimizer_and_result(run, corpus, tmp_path):
    from glyphsr_core.cli import main

    config, models, _, result, out = run
    checkpoint = out / "checkpoints" / "checkpoint-2"
    assert json.loads((checkpoint / "trainer_state.json").read_text()) == {"step": 2}
    resumed_out = tmp_path / "resumed"
    config_file = tmp_path / "train.json.yaml"
    raw = json.loads((out / "config.json").read_text())
    raw["train"]["output_dir"] = str(resumed_out)
    raw["validation"]["every"] = 0
    config_file.write_text(json.dumps(raw))  # JSON is YAML
    assert main(["train", "--config", str(config_file), "--resume", str(checkpoint)]) == 0

    from safetensors.torch import load_file

    log = [json.loads(line) for line in (resumed_out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [3, 4]  # continues at step 3, stops at max_steps
    assert [r["loss"] for r in log] == pytest.approx(result.losses[2:], rel=1e-5)
    final = load_file(str(resumed_out / "checkpoints" / "checkpoint-4" / "model.safetensors"))
    reference = load_file(str(out / "checkpoints" / "checkpoint-4" / "model.safetensors"))
    for key in reference:
        torch.testing.assert_close(final[key], reference[key], rtol=1e-5, atol=1e-6)
    # the optimizer moments came back from the checkpoint (fresh ones would give other weights, step counts)
    optim = torch.load(resumed_out / "checkpoints" / "checkpoint-4" / "optimizer.bin", weights_only=True)
    optim_ref = torch.load(out / "checkpoints" / "checkpoint-4" / "optimizer.bin", weights_only=True)
    assert {int(s["step"]) for s in optim["state"].values()} == {STEPS}
    for index, state in optim_ref["state"].items():
        torch.testing.assert_close(optim["state"][index]["exp_avg_sq"], state["exp_avg_sq"], rtol=1e-4, atol=1e-10)


def test_loss_on_a_fixed_batch_goes_down(corpus, tmp_path):
    from diffusers import DDPMScheduler

    config = _config(corpus, tmp_path)
    models = load_models(config)
    from glyphsr_core.data.corpus import load_corpus

    dataset = CorpusDataset(split_corpus(load_corpus(corpus), 2)[0], [4], 64)
    batch = collate([dataset[key] for key in StepBatchSampler(len(dataset), 2, seed=0).batch(0)])
    scheduler = DDPMScheduler.from_config(models.base.scheduler.config)
    encode = prompt_encoder(models.base, models.scene)
    optimizer = torch.optim.AdamW(models.text.parameters(), lr=3e-3)

    def loss():
        torch.manual_seed(1234)  # same noise and timesteps every time
        return training_loss(models, models.text, batch, scheduler, encode, beta=0.5, prediction_type="epsilon",
                             text_mask_weight=2.0, weight_dtype=torch.float32, device=torch.device("cpu"))

    with torch.no_grad():
        start = float(loss())
    for _ in range(6):
        optimizer.zero_grad()
        value = loss()
        value.backward()
        optimizer.step()
    with torch.no_grad():
        end = float(loss())
    assert end < start * 0.95, (start, end)


def test_sampler_is_a_pure_function_of_the_step():
    sampler = StepBatchSampler(10, 3, seed=4)
    first = [sampler.batch(i) for i in range(8)]
    resumed = list(StepBatchSampler(10, 3, seed=4, start=5, stop=8))
    assert resumed == first[5:8]
    epoch = [key.index for batch in first[:3] for key in batch] + [first[3][0].index]
    assert sorted(epoch) == list(range(10))  # one pass over the data before any repeat
    ranks = [StepBatchSampler(10, 3, seed=4, rank=r, world=2).batch(0) for r in (0, 1)]
    assert ranks == [first[0], first[1]]


def test_config_errors_are_named(tmp_path, corpus):
    with pytest.raises(ConfigError, match="learning_rat"):
        config_from_dict({"model": {"tiny": "sd15"}, "data": {"corpus": "x"}, "train": {"learning_rat": 1}})
    with pytest.raises(ConfigError, match="model.base and model.scene_controlnet"):
        config_from_dict({"data": {"corpus": "x"}})
    with pytest.raises(ConfigError, match="mixed_precision"):
        config_from_dict({"model": {"tiny": "sd15"}, "data": {"corpus": "x"}, "train": {"mixed_precision": "fp8"}})
    tiny = {"model": {"tiny": "sd15"}, "data": {"corpus": "x"}}
    for validation, named in (({"schedule": "altenate"}, "schedule"), ({"switch_at": 1.5}, "switch_at"),
                              ({"schedule": "pattern", "pattern": "SXT"}, "pattern"), ({"scheduler": "heun"}, "scheduler")):
        with pytest.raises(ConfigError, match=f"validation.*{named}"):
            config_from_dict({**tiny, "validation": validation})
    pattern = config_from_dict({**tiny, "validation": {"schedule": "pattern", "pattern": "sst"}}).validation.pingpong()
    assert pattern.branches(6) == "SSTSST"
    toml = tmp_path / "c.toml"
    toml.write_text(f'[model]\ntiny = "sdxl"\n[data]\ncorpus = "{corpus}"\n[train]\nmax_steps = 3\n')
    config = load_config(toml, ["train.batch_size=5", "validation.every=0"])
    assert (config.model.tiny, config.train.max_steps, config.train.batch_size, config.validation.every) == \
        ("sdxl", 3, 5, 0)
    assert config.train.learning_rate == 1e-6 and config.train.lr_warmup_steps == 5000  # the authors' defaults


@pytest.mark.parametrize("name", ["train_sd15.yaml", "train_sdxl.yaml", "tiny.yaml"])
def test_shipped_configs_parse(name):
    from pathlib import Path

    config = load_config(Path(__file__).resolve().parent.parent / "configs" / name)
    assert config.train.max_steps >= 1


def test_sdxl_tiny_training_step_runs(corpus, tmp_path):
    config = _config(corpus, tmp_path, max_steps=1, checkpointing_steps=1, save_bundle_steps=1)
    config.model.tiny = "sdxl"
    config.validation.every = 0
    result = train(copy.deepcopy(config))
    assert result.step == 1 and set(result.bundles) == {"text", "full"}
    assert read_bundle(result.bundles["full"]).text_hint == "lq+glyph"


def test_training_refuses_to_continue_a_branch_that_sees_the_restored_image(corpus, tmp_path):
    """Training feeds the LQ image: a bundle recording 'restored' (e.g. the shared branch) is not a start."""
    from glyphsr_core.diffusion.models import controlnet_state_dict
    from glyphsr_core.tscontrolnet import shared_bundle, write_bundle

    config = _config(corpus, tmp_path / "a")
    scene = controlnet_state_dict(load_models(config).scene)
    bundle = write_bundle(tmp_path / "shared.safetensors", shared_bundle(scene))
    raw = copy.deepcopy(config_to_dict(config))
    raw["model"]["init_text_from"] = str(bundle)
    with pytest.raises(ValueError, match="sees the restored image .*text_hint 'restored'.* training feeds the LQ"):
        load_models(config_from_dict(raw))
