"""A text branch trained by `glyphsr_core.training` loads and samples in real ComfyUI.

The base is a diffusers twin of the harness's tiny SD1.5 UNet (same architecture, random weights)
and the scene branch is the harness's tiny ControlNet file (original `control_model.*` layout): the
trainer runs two real steps and writes the bundles in that same layout, which ComfyUI's loader
reads (diffusers-layout ControlNets load in ComfyUI only at real model sizes).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

pytest.importorskip("diffusers")
pytest.importorskip("accelerate")

from comfy_client import Graph  # noqa: E402

SIZE = 64
#: diffusers keywords of the harness's tiny SD1.5 UNet (tiny_models.TINY_SD15_UNET)
COMFY_TINY_UNET = dict(block_out_channels=(320,), layers_per_block=1, down_block_types=("CrossAttnDownBlock2D",),
                       up_block_types=("CrossAttnUpBlock2D",), attention_head_dim=8, norm_num_groups=32)


@pytest.fixture(scope="module")
def trained(comfy_server, tiny_controlnet, tmp_path_factory):
    from glyphsr_core.data.corpus import CorpusConfig, make_corpus
    from glyphsr_core.diffusion.models import controlnet_from_state_dict, controlnet_state_dict
    from glyphsr_core.diffusion.tiny import build_tiny_base
    from glyphsr_core.training.text_branch_config import config_from_dict
    from glyphsr_core.training.text_branch import Models, train
    from glyphsr_core.tscontrolnet import init_text_from_scene

    scene_sd = load_file(str(comfy_server.models_dir / "controlnet" / tiny_controlnet))
    base = build_tiny_base("sd15", seed=0, text_width=768, unet_config=COMFY_TINY_UNET)
    scene = controlnet_from_state_dict(scene_sd, base.unet)
    text = controlnet_from_state_dict(init_text_from_scene(controlnet_state_dict(scene)), base.unet)
    models = Models(base=base, scene=scene, text=text.requires_grad_(True).train(), scene_file_sd=scene_sd)
    corpus = tmp_path_factory.mktemp("corpus")
    make_corpus(CorpusConfig(out=corpus, size=128, scales=(4,), seed=1), 4, workers=1)
    out = tmp_path_factory.mktemp("train")
    config = config_from_dict({
        "model": {"tiny": "sd15"},  # unused: the models are given
        "data": {"corpus": str(corpus), "scales": [4], "resolution": SIZE, "validation_samples": 1, "num_workers": 0},
        "train": {"output_dir": str(out), "max_steps": 2, "batch_size": 1, "learning_rate": 1e-2,
                  "lr_scheduler": "constant", "lr_warmup_steps": 0, "checkpointing_steps": 2, "save_bundle_steps": 2},
        "validation": {"every": 0},
    })
    result = train(config, models=models)
    names = {kind: comfy_server.install_model(path, "controlnet") for kind, path in result.bundles.items()}
    return scene_sd, result, names


def _sample(server, ckpt, hint, prefix, loader_kwargs) -> np.ndarray:
    g = Graph(server)
    model = g.node("CheckpointLoaderSimple", ckpt_name=ckpt)
    pos = g.node("CLIPTextEncode", text='the text "OPEN"', clip=model.out(1))
    neg = g.node("CLIPTextEncode", text="blurry", clip=model.out(1))
    image = g.node("LoadImage", image=hint)
    cnet = g.node("GlyphSR_TSControlNetLoader", **loader_kwargs)
    applied = g.node("ControlNetApplyAdvanced", positive=pos.out(0), negative=neg.out(0), control_net=cnet.out(0),
                     image=image.out(0), strength=1.0, start_percent=0.0, end_percent=1.0)
    latent = g.node("EmptyLatentImage", width=SIZE, height=SIZE, batch_size=1)
    sampled = g.node("KSampler", model=model.out(0), positive=applied.out(0), negative=applied.out(1),
                     latent_image=latent.out(0), seed=5, steps=3, cfg=4.0, sampler_name="euler", scheduler="normal",
                     denoise=1.0)
    decoded = g.node("VAEDecode", samples=sampled.out(0), vae=model.out(2))
    save = g.node("SaveImage", images=decoded.out(0), filename_prefix=prefix)
    with Image.open(server.queue(g).files(save.id)[0]) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int16)


def test_trained_bundles_keep_the_scene_files_layout(trained):
    from glyphsr_core.tscontrolnet import read_bundle

    scene_sd, result, _ = trained
    text_only, full = read_bundle(result.bundles["text"]), read_bundle(result.bundles["full"])
    assert set(text_only.text) == set(scene_sd) == set(full.scene)
    assert all(text_only.text[k].dtype == scene_sd[k].dtype for k in scene_sd)
    changed = [k for k in scene_sd if not torch.equal(text_only.text[k], scene_sd[k])]
    assert len(changed) > len(scene_sd) // 2, "the trained text branch equals the scene branch"


def test_trained_bundles_load_and_sample_in_comfyui(comfy_server, trained, tiny_sd15, tiny_controlnet, unique_prefix):
    _, _, names = trained
    rng = np.random.default_rng(7)
    Image.fromarray((rng.random((SIZE, SIZE, 3)) * 255).astype(np.uint8)).save(comfy_server.input_dir / "glyphsr_train_hint.png")
    hint = "glyphsr_train_hint.png"
    full = _sample(comfy_server, tiny_sd15, hint, unique_prefix + "_full",
                   {"control_net_name": names["full"], "second_control_net": "None", "beta": 1.0})
    text_only = _sample(comfy_server, tiny_sd15, hint, unique_prefix + "_text",
                        {"control_net_name": names["text"], "second_control_net": tiny_controlnet, "beta": 1.0})
    scene = _sample(comfy_server, tiny_sd15, hint, unique_prefix + "_scene",
                    {"control_net_name": names["full"], "second_control_net": "None", "beta": 0.0})
    assert full.shape == (SIZE, SIZE, 3)
    assert np.array_equal(full, text_only)  # text-only bundle + the scene file == the full bundle
    assert np.abs(full - scene).mean() > 0.0  # beta 1 runs the trained text branch, not the scene branch
