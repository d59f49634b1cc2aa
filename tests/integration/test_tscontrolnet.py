"""TS-ControlNet in a real ComfyUI: loading, attaching, sampling, glyph hint, model mismatch.

Bundles are written by the test from the harness's tiny ControlNets (the text branch is the scene
branch with perturbed weights, so the two branches give different residuals). The SDXL tests use the
tiny SDXL checkpoint and ControlNet (built on first use, ~1 min; see tiny_models.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

import tiny_models
from comfy_client import ComfyExecutionError, Graph
from glyphsr_core.tscontrolnet import TSBundle, init_text_from_scene, write_bundle

SIZE = 64
HERE = Path(__file__).resolve().parent


def perturbed(sd: dict, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {k: (v + 0.2 * torch.randn(v.shape, generator=g).to(v.dtype)) if v.is_floating_point() else v.clone()
            for k, v in sd.items()}


@pytest.fixture(scope="module")
def scene_sd(comfy_server, tiny_controlnet) -> dict:
    return load_file(str(comfy_server.models_dir / "controlnet" / tiny_controlnet))


@pytest.fixture(scope="module")
def bundles(comfy_server, scene_sd, tiny_controlnet_glyph, tmp_path_factory) -> dict[str, str]:
    """name -> file name in models/controlnet."""
    out = tmp_path_factory.mktemp("bundles")
    glyph6 = load_file(str(comfy_server.models_dir / "controlnet" / tiny_controlnet_glyph))
    made = {
        "beta0": TSBundle(scene_sd, perturbed(scene_sd, 1), beta=0.0, base="sd15"),
        "beta05": TSBundle(scene_sd, perturbed(scene_sd, 1), beta=0.5, base="sd15"),
        "text_only0": TSBundle(None, perturbed(scene_sd, 1), beta=0.0, base="sd15"),
        "glyph1": TSBundle(scene_sd, init_text_from_scene(scene_sd, glyph_channel=True), beta=1.0,
                           text_hint="lq+glyph", base="sd15"),
        "glyph3": TSBundle(scene_sd, glyph6, beta=0.5, text_hint="lq+glyph", base="sd15"),
    }
    names = {}
    for key, bundle in made.items():
        path = write_bundle(out / f"glyphsr_ts_{key}.safetensors", bundle)
        names[key] = comfy_server.install_model(path, "controlnet")
    return names


@pytest.fixture(scope="module")
def sdxl_bundles(comfy_server, tiny_controlnet_sdxl, tmp_path_factory) -> dict[str, str]:
    """Bundles made from the tiny SDXL ControlNet: name -> file name in models/controlnet."""
    out = tmp_path_factory.mktemp("sdxl_bundles")
    scene = load_file(str(comfy_server.models_dir / "controlnet" / tiny_controlnet_sdxl))
    made = {
        "beta05": TSBundle(scene, perturbed(scene, 1), beta=0.5, base="sdxl"),
    }
    return {key: comfy_server.install_model(write_bundle(out / f"glyphsr_ts_sdxl_{key}.safetensors", bundle),
                                            "controlnet")
            for key, bundle in made.items()}


@pytest.fixture(scope="module")
def hint_image(comfy_server) -> str:
    rng = np.random.default_rng(3)
    image = Image.fromarray((rng.random((SIZE, SIZE, 3)) * 255).astype(np.uint8))
    image.save(comfy_server.input_dir / "glyphsr_ts_hint.png")
    return "glyphsr_ts_hint.png"


def sample(server, ckpt, hint, prefix, control=None) -> np.ndarray:
    """Sample a tiny checkpoint; `control(g, pos, neg, image) -> (pos_out, neg_out)` attaches a ControlNet."""
    g = Graph(server)
    model = g.node("CheckpointLoaderSimple", ckpt_name=ckpt)
    pos = g.node("CLIPTextEncode", text="a shop sign that says OPEN", clip=model.out(1))
    neg = g.node("CLIPTextEncode", text="blurry", clip=model.out(1))
    image = g.node("LoadImage", image=hint)
    positive, negative = (pos.out(0), neg.out(0)) if control is None else control(g, pos, neg, image)
    latent = g.node("EmptyLatentImage", width=SIZE, height=SIZE, batch_size=1)
    sampled = g.node("KSampler", model=model.out(0), positive=positive, negative=negative,
                     latent_image=latent.out(0), seed=11, steps=3, cfg=4.0, sampler_name="euler",
                     scheduler="normal", denoise=1.0)
    decoded = g.node("VAEDecode", samples=sampled.out(0), vae=model.out(2))
    save = g.node("SaveImage", images=decoded.out(0), filename_prefix=prefix)
    files = server.queue(g).files(save.id)
    with Image.open(files[0]) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int16)


def comfy_apply(loader_kwargs, node="GlyphSR_TSControlNetLoader"):
    """Attach with ComfyUI's own Apply ControlNet (ControlNetApplyAdvanced)."""
    def attach(g, pos, neg, image):
        cnet = g.node(node, **loader_kwargs)
        applied = g.node("ControlNetApplyAdvanced", positive=pos.out(0), negative=neg.out(0), control_net=cnet.out(0),
                         image=image.out(0), strength=1.0, start_percent=0.0, end_percent=1.0)
        return applied.out(0), applied.out(1)
    return attach


def ts_apply(bundle, beta_text=-1.0, beta_scene=-1.0, glyph=False, mask=False):
    """Attach with GlyphSR Apply TS-ControlNet (scene pair sampled)."""
    def attach(g, pos, neg, image):
        cnet = g.node("GlyphSR_TSControlNetLoader", control_net_name=bundle, second_control_net="None", beta=-1.0)
        extra = {}
        if glyph:
            extra["glyph"] = image.out(0)
        if mask:
            extra["text_mask"] = image.out(1)
        applied = g.node("GlyphSR_ApplyTSControlNet", scene_positive=pos.out(0), scene_negative=neg.out(0),
                         text_positive=pos.out(0), text_negative=neg.out(0), control_net=cnet.out(0),
                         image=image.out(0), beta_text=beta_text, beta_scene=beta_scene, strength=1.0,
                         start_percent=0.0, end_percent=1.0, **extra)
        return applied.out(0), applied.out(1)
    return attach


def test_loader_lists_models_controlnet(comfy_server, bundles, tiny_controlnet):
    info = comfy_server.object_info("GlyphSR_TSControlNetLoader")["input"]["required"]
    assert set(bundles.values()) | {tiny_controlnet} <= set(info["control_net_name"][0])
    assert info["second_control_net"][0][0] == "None"


def scene_controlnet_alone(server, ckpt, controlnet, hint, prefix) -> np.ndarray:
    """The image with ComfyUI's own ControlNet (the reference for beta 0), checked to differ from no control."""
    scene_alone = sample(server, ckpt, hint, prefix + "_plain",
                         comfy_apply({"control_net_name": controlnet}, node="ControlNetLoader"))
    no_control = sample(server, ckpt, hint, prefix + "_none")
    assert np.abs(scene_alone - no_control).mean() > 0.5, f"the tiny ControlNet {controlnet} does not change the output"
    return scene_alone


def test_beta_zero_samples_exactly_like_the_scene_controlnet(comfy_server, tiny_sd15, tiny_controlnet, bundles,
                                                             hint_image, unique_prefix):
    scene_alone = scene_controlnet_alone(comfy_server, tiny_sd15, tiny_controlnet, hint_image, unique_prefix)

    # ComfyUI's own Apply ControlNet accepts the TS object (the bundle's beta 0)
    via_comfy = sample(comfy_server, tiny_sd15, hint_image, unique_prefix + "_ts_comfy",
                       comfy_apply({"control_net_name": bundles["beta0"], "second_control_net": "None", "beta": -1.0}))
    assert np.array_equal(via_comfy, scene_alone)
    # a text-only bundle paired with the user's scene ControlNet file
    text_only = sample(comfy_server, tiny_sd15, hint_image, unique_prefix + "_ts_tonly",
                       comfy_apply({"control_net_name": bundles["text_only0"], "second_control_net": tiny_controlnet,
                                    "beta": -1.0}))
    assert np.array_equal(text_only, scene_alone)
    # our Apply node with beta_text 0 overriding a beta-0.5 bundle
    via_ours = sample(comfy_server, tiny_sd15, hint_image, unique_prefix + "_ts_ours", ts_apply(bundles["beta05"], 0.0))
    assert np.array_equal(via_ours, scene_alone)
    # and the text branch really counts when beta > 0
    blended = sample(comfy_server, tiny_sd15, hint_image, unique_prefix + "_ts_half", ts_apply(bundles["beta05"]))
    assert np.abs(blended - scene_alone).mean() > 0.5


def test_glyph_hint_runs_with_lq_glyph_bundles(comfy_server, tiny_sd15, tiny_controlnet, bundles, hint_image,
                                               unique_prefix):
    scene_alone = sample(comfy_server, tiny_sd15, hint_image, unique_prefix + "_plain",
                         comfy_apply({"control_net_name": tiny_controlnet}, node="ControlNetLoader"))
    # a text branch initialised from the scene branch + zero glyph channel: same result at beta 1
    init = sample(comfy_server, tiny_sd15, hint_image, unique_prefix + "_g1", ts_apply(bundles["glyph1"], glyph=True))
    assert np.abs(init - scene_alone).mean() < 1.0
    # a 6-channel (LQ RGB + RGB glyph) text branch, with a text mask
    out = sample(comfy_server, tiny_sd15, hint_image, unique_prefix + "_g3",
                 ts_apply(bundles["glyph3"], 1.0, 0.2, glyph=True, mask=True))
    assert out.shape == (SIZE, SIZE, 3) and out.std() > 0


def test_missing_glyph_for_lq_glyph_bundle_names_the_input(comfy_server, tiny_sd15, bundles, hint_image):
    with pytest.raises(ComfyExecutionError) as err:
        sample(comfy_server, tiny_sd15, hint_image, "t_glyph_missing", ts_apply(bundles["glyph3"]))
    assert err.value.node_type == "GlyphSR_ApplyTSControlNet"
    assert "'glyph' is missing" in err.value.exception_message


_SD2_CONTROLNET = f"sys.path.insert(1, {str(HERE)!r})\n" + r"""
import torch, comfy.cldm.cldm, comfy.ops, tiny_models
from comfy.utils import save_torch_file
config = {k: v for k, v in tiny_models.TINY_SD15_UNET.items() if k != "out_channels"}
config.update(context_dim=1024, use_linear_in_transformer=True)
net = comfy.cldm.cldm.ControlNet(**config, hint_channels=3, dtype=torch.float32, device="cpu",
                                 operations=comfy.ops.disable_weight_init)
tiny_models._random_init(net, 5)
save_torch_file(tiny_models._half(net.state_dict(), "control_model."), sys.argv[1])
"""


def test_branch_for_another_base_fails_with_a_clear_message(comfy_server, tiny_sd15, hint_image, tmp_path):
    """An SD2-shaped (cross-attention 1024) bundle on the SD1.5 model (SD1.5 vs SDXL: the tests below)."""
    cn_path = tmp_path / "sd2_cn.safetensors"
    tiny_models.run_comfy_python(_SD2_CONTROLNET, str(cn_path), comfyui_dir=comfy_server.comfyui_dir)
    sd2 = load_file(str(cn_path))
    name = comfy_server.install_model(
        write_bundle(tmp_path / "glyphsr_ts_sd2.safetensors", TSBundle(sd2, perturbed(sd2, 2), beta=0.5)),
        "controlnet")
    with pytest.raises(ComfyExecutionError) as err:
        sample(comfy_server, tiny_sd15, hint_image, "t_mismatch", ts_apply(name))
    message = err.value.exception_message
    assert "scene branch was made for" in message and "cross-attention width 1024" in message
    assert "model being sampled is SD1.x" in message


def test_sd15_bundle_on_the_sdxl_model_fails_with_a_clear_message(comfy_server, tiny_sdxl, bundles, hint_image):
    """The check runs before the first step, so the user gets a sentence rather than a shape error."""
    with pytest.raises(ComfyExecutionError) as err:
        sample(comfy_server, tiny_sdxl, hint_image, "t_mismatch_xl", ts_apply(bundles["beta05"]))
    assert err.value.node_type == "KSampler"
    message = err.value.exception_message
    assert "scene branch was made for SD1.x (cross-attention width 768, class-embedding input none)" in message
    assert "model being sampled is SDXL (cross-attention width 2048, class-embedding input 2816)" in message


def test_sdxl_bundle_on_the_sd15_model_fails_with_a_clear_message(comfy_server, tiny_sd15, sdxl_bundles,
                                                                  hint_image):
    with pytest.raises(ComfyExecutionError) as err:
        sample(comfy_server, tiny_sd15, hint_image, "t_mismatch_15", ts_apply(sdxl_bundles["beta05"]))
    message = err.value.exception_message
    assert "scene branch was made for SDXL (cross-attention width 2048, class-embedding input 2816)" in message
    assert "model being sampled is SD1.x" in message


def test_sdxl_bundle_samples_on_the_sdxl_model(comfy_server, tiny_sdxl, tiny_controlnet_sdxl, sdxl_bundles,
                                               hint_image, unique_prefix):
    scene_alone = scene_controlnet_alone(comfy_server, tiny_sdxl, tiny_controlnet_sdxl, hint_image, unique_prefix)
    # beta_text 0: exactly the scene ControlNet alone, through ComfyUI's SDXL conditioning (y, pooled)
    via_ours = sample(comfy_server, tiny_sdxl, hint_image, unique_prefix + "_ts0",
                      ts_apply(sdxl_bundles["beta05"], 0.0))
    assert np.array_equal(via_ours, scene_alone)
    # the bundle's own beta 0.5: the text branch counts
    blended = sample(comfy_server, tiny_sdxl, hint_image, unique_prefix + "_ts05", ts_apply(sdxl_bundles["beta05"]))
    assert np.abs(blended - scene_alone).mean() > 0.5


# ------------------------------------------------------------------------------------------------
# mask fusion by value: the residuals that reach the UNet, recorded (test pack glyphsr_test_recorder)

def _half_mask(g):
    """MASK [1, SIZE, SIZE]: 1 on the left half, 0 on the right (core mask nodes)."""
    empty = g.node("SolidMask", value=0.0, width=SIZE, height=SIZE)
    left = g.node("SolidMask", value=1.0, width=SIZE // 2, height=SIZE)
    return g.node("MaskComposite", destination=empty.out(0), source=left.out(0), x=0, y=0, operation="add")


def _record_first_call(server, ckpt, bundle, image_node, mask_of, runs: dict, path_dir: Path, prefix: str,
                       batch: int = 1) -> dict[str, dict[str, torch.Tensor]]:
    """For each run name -> (beta_text, beta_scene, use_mask): sample 1 step and return the ControlNet
    residuals the first UNet call received."""
    g = Graph(server)
    model = g.node("CheckpointLoaderSimple", ckpt_name=ckpt)
    pos = g.node("CLIPTextEncode", text="a shop sign that says OPEN", clip=model.out(1))
    neg = g.node("CLIPTextEncode", text="blurry", clip=model.out(1))
    image = image_node(g)
    latent = g.node("EmptyLatentImage", width=SIZE, height=SIZE, batch_size=batch)
    cnet = g.node("GlyphSR_TSControlNetLoader", control_net_name=bundle, second_control_net="None", beta=-1.0)
    paths = {}
    for name, (beta_text, beta_scene, use_mask) in runs.items():
        extra = {"text_mask": mask_of(g).out(0)} if use_mask else {}
        applied = g.node("GlyphSR_ApplyTSControlNet", scene_positive=pos.out(0), scene_negative=neg.out(0),
                         text_positive=pos.out(0), text_negative=neg.out(0), control_net=cnet.out(0),
                         image=image.out(0), beta_text=beta_text, beta_scene=beta_scene, strength=1.0,
                         start_percent=0.0, end_percent=1.0, **extra)
        paths[name] = path_dir / f"{name}.jsonl"
        recorder = g.node("GlyphSRTest_RecordSampling", model=model.out(0), path=str(paths[name]))
        sampled = g.node("KSampler", model=recorder.out(0), positive=applied.out(0), negative=applied.out(1),
                         latent_image=latent.out(0), seed=11, steps=1, cfg=4.0, sampler_name="euler",
                         scheduler="normal", denoise=1.0)
        g.node("SaveLatent", samples=sampled.out(0), filename_prefix=f"{prefix}_{name}")
    server.queue(g)
    out = {}
    for name, path in paths.items():
        (first, *_rest) = [json.loads(line) for line in path.read_text().splitlines() if '"unet"' in line]
        assert first["control"] and first["batch"] == 2 * batch, first  # cond and uncond in one call
        out[name] = load_file(str(path) + ".call0.safetensors")
    return out


def test_mask_fusion_gives_text_residuals_inside_and_scene_residuals_outside(comfy_server, tiny_sd15, bundles,
                                                                            hint_image, unique_prefix, tmp_path):
    runs = {"masked": (1.0, 0.0, True), "scene": (0.0, 0.0, False), "text": (1.0, 1.0, False)}
    got = _record_first_call(comfy_server, tiny_sd15, bundles["beta05"], lambda g: g.node("LoadImage", image=hint_image),
                             _half_mask, runs, tmp_path, unique_prefix)
    checked = 0
    for key, fused in got["masked"].items():
        scene, text = got["scene"][key], got["text"][key]
        width = fused.shape[-1]
        if width % 2:
            continue  # a column straddles the mask edge
        half = width // 2
        assert torch.equal(fused[..., :half], text[..., :half]), key
        assert torch.equal(fused[..., half:], scene[..., half:]), key
        assert not torch.equal(text[..., :half], scene[..., :half]), key  # the check can fail
        checked += 1
    assert checked >= 2, sorted(got["masked"])  # the tiny ControlNet returns 3 residuals


def test_batch_of_two_each_image_gets_its_own_mask_and_hint_under_cfg(comfy_server, tiny_sd15, bundles, hint_image,
                                                                       unique_prefix, tmp_path):
    """Image 0 is all text, image 1 has none; cond and uncond are stacked ([img0, img1, img0, img1]), so
    items 0 and 2 must carry the text branch's residuals of hint 0, items 1 and 3 the scene branch's of hint 1."""
    rng = np.random.default_rng(8)
    Image.fromarray((rng.random((SIZE, SIZE, 3)) * 255).astype(np.uint8)).save(
        comfy_server.input_dir / "glyphsr_ts_hint_b.png")

    def two_images(g):
        a, b = g.node("LoadImage", image=hint_image), g.node("LoadImage", image="glyphsr_ts_hint_b.png")
        return g.node("ImageBatch", image1=a.out(0), image2=b.out(0))

    def text_then_none(g):
        full = g.node("MaskToImage", mask=g.node("SolidMask", value=1.0, width=SIZE, height=SIZE).out(0))
        none = g.node("MaskToImage", mask=g.node("SolidMask", value=0.0, width=SIZE, height=SIZE).out(0))
        return g.node("ImageToMask", image=g.node("ImageBatch", image1=full.out(0), image2=none.out(0)).out(0),
                      channel="red")

    runs = {"masked": (1.0, 0.0, True), "scene": (0.0, 0.0, False), "text": (1.0, 1.0, False)}
    got = _record_first_call(comfy_server, tiny_sd15, bundles["beta05"], two_images, text_then_none, runs, tmp_path,
                             unique_prefix, batch=2)
    for key, fused in got["masked"].items():
        scene, text = got["scene"][key], got["text"][key]
        assert fused.shape[0] == 4, key
        for i in (0, 2):
            assert torch.equal(fused[i], text[i]), (key, i)
        for i in (1, 3):
            assert torch.equal(fused[i], scene[i]), (key, i)
        assert not torch.equal(text[0], text[1]), key  # the two hints differ, so a swap would show


def test_a_tiny_diffusers_layout_bundle_is_refused_with_a_sentence(comfy_server, tiny_sd15, scene_sd, hint_image,
                                                                  tmp_path):
    """ComfyUI converts diffusers-layout ControlNets only at standard sizes (else a bare TypeError): the
    loader says so and what to do instead."""
    pytest.importorskip("diffusers")
    from glyphsr_core.diffusion.models import to_diffusers_layout
    from glyphsr_core.diffusion.tiny import build_tiny_base

    tiny_unet = dict(block_out_channels=(320,), layers_per_block=1, down_block_types=("CrossAttnDownBlock2D",),
                     up_block_types=("CrossAttnUpBlock2D",), attention_head_dim=8, norm_num_groups=32)
    base = build_tiny_base("sd15", seed=0, text_width=768, unet_config=tiny_unet)
    diffusers_sd = to_diffusers_layout(scene_sd, base.unet)
    assert "controlnet_cond_embedding.conv_in.weight" in diffusers_sd
    name = comfy_server.install_model(write_bundle(tmp_path / "glyphsr_ts_diffusers.safetensors",
                                                   TSBundle(diffusers_sd, perturbed(diffusers_sd, 1), beta=0.5)),
                                      "controlnet")
    with pytest.raises(ComfyExecutionError) as err:
        sample(comfy_server, tiny_sd15, hint_image, "t_diffusers", ts_apply(name))
    assert err.value.node_type == "GlyphSR_TSControlNetLoader"
    assert "diffusers layout with an architecture ComfyUI cannot convert" in err.value.exception_message
# ------------------------------------------------------------------ shared-weights text branch

SHARED = "shared: scene weights"


@pytest.fixture(scope="module")
def hint_sensitive(comfy_server, scene_sd, tmp_path_factory) -> str:
    """The tiny ControlNet with every weight perturbed, so the hint's content changes its output (the tiny
    ControlNet's last hint conv is zero, as in a fresh ControlNet, so any hint gives the same residuals)."""
    path = tmp_path_factory.mktemp("hint_sensitive") / "glyphsr_tiny_sd15_hint_sensitive.safetensors"
    save_file(perturbed(scene_sd, 5), str(path))
    return comfy_server.install_model(path, "controlnet")


@pytest.fixture(scope="module")
def restored_image(comfy_server) -> str:
    """A stand-in for the restored image R: another image of the hint's size (the text branch's hint)."""
    rng = np.random.default_rng(8)
    image = Image.fromarray((rng.random((SIZE, SIZE, 3)) * 160 + 90).astype(np.uint8))
    image.save(comfy_server.input_dir / "glyphsr_ts_restored.png")
    return "glyphsr_ts_restored.png"


def shared_apply(controlnet, beta_text, text_image, beta_scene=0.0, second=SHARED, record=None):
    """Attach a TS-ControlNet from the loader's (controlnet, second) choice, text_image loaded from the input folder."""
    def attach(g, pos, neg, image):
        cnet = g.node("GlyphSR_TSControlNetLoader", control_net_name=controlnet, second_control_net=second, beta=-1.0)
        restored = g.node("LoadImage", image=text_image)
        applied = g.node("GlyphSR_ApplyTSControlNet", scene_positive=pos.out(0), scene_negative=neg.out(0),
                         text_positive=pos.out(0), text_negative=neg.out(0), control_net=cnet.out(0),
                         image=image.out(0), text_image=restored.out(0), beta_text=beta_text, beta_scene=beta_scene,
                         strength=1.0, start_percent=0.0, end_percent=1.0)
        positive, negative = applied.out(0), applied.out(1)
        if record is not None:
            positive = g.node("GlyphSRTest_RecordingTSControl", conditioning=positive, path=str(record)).out(0)
            negative = g.node("GlyphSRTest_RecordingTSControl", conditioning=negative, path=str(record)).out(0)
        return positive, negative
    return attach


def test_shared_text_branch_at_beta_zero_is_the_plain_controlnet(comfy_server, tiny_sd15, hint_sensitive,
                                                                 hint_image, restored_image, unique_prefix):
    scene_alone = scene_controlnet_alone(comfy_server, tiny_sd15, hint_sensitive, hint_image, unique_prefix)
    shared = sample(comfy_server, tiny_sd15, hint_image, unique_prefix + "_shared0",
                    shared_apply(hint_sensitive, 0.0, restored_image))
    assert np.array_equal(shared, scene_alone)


def test_shared_text_branch_runs_the_scene_weights_on_the_restored_image(comfy_server, tiny_sd15, hint_sensitive,
                                                                         hint_image, restored_image, unique_prefix):
    # beta 1: only the text branch, i.e. the scene ControlNet's weights on R == ComfyUI's ControlNet with hint R
    on_restored = sample(comfy_server, tiny_sd15, restored_image, unique_prefix + "_plainR",
                         comfy_apply({"control_net_name": hint_sensitive}, node="ControlNetLoader"))
    text_only = sample(comfy_server, tiny_sd15, hint_image, unique_prefix + "_shared1",
                       shared_apply(hint_sensitive, 1.0, restored_image))
    assert np.array_equal(text_only, on_restored)
    # the same image as both hints makes the branches one: the restored image is what the text branch adds
    scene_alone = sample(comfy_server, tiny_sd15, hint_image, unique_prefix + "_plain",
                         comfy_apply({"control_net_name": hint_sensitive}, node="ControlNetLoader"))
    same_hint = sample(comfy_server, tiny_sd15, hint_image, unique_prefix + "_sharedsame",
                       shared_apply(hint_sensitive, 0.5, hint_image))
    assert np.abs(same_hint - scene_alone).mean() < 1.0
    assert np.abs(text_only - scene_alone).mean() > 0.5


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _image_mean(server, name: str) -> float:
    with Image.open(server.input_dir / name) as im:
        return float(np.asarray(im.convert("RGB"), dtype=np.float64).mean() / 255.0)


def test_shared_text_branch_loads_the_weights_once_and_each_branch_gets_its_hint(
        comfy_server, tiny_sd15, hint_sensitive, bundles, hint_image, restored_image, unique_prefix, tmp_path):
    shared_log, two_log = tmp_path / "shared.jsonl", tmp_path / "two.jsonl"
    sample(comfy_server, tiny_sd15, hint_image, unique_prefix + "_rec_shared",
           shared_apply(hint_sensitive, 0.5, restored_image, record=shared_log))
    sample(comfy_server, tiny_sd15, hint_image, unique_prefix + "_rec_two",
           shared_apply(bundles["beta05"], 0.5, restored_image, second="None", record=two_log))
    shared, two = _records(shared_log), _records(two_log)
    lq_mean, r_mean = _image_mean(comfy_server, hint_image), _image_mean(comfy_server, restored_image)
    assert abs(lq_mean - r_mean) > 0.05
    for branch, mean in (("scene", lq_mean), ("text", r_mean)):
        calls = [r for r in shared if r["branch"] == branch]
        assert calls and all(abs(r["hint_mean"] - mean) < 2e-3 for r in calls), (branch, calls[:2])
    # one model object, one ControlNet loaded by ComfyUI; a bundle with its own text branch loads two
    assert len({r["model_id"] for r in shared}) == 1
    assert {(r["patchers"], r["loaded_controlnets"]) for r in shared} == {(1, 1)}
    assert {(r["patchers"], r["loaded_controlnets"]) for r in two} == {(2, 2)}
    assert max(r["loaded_bytes"] for r in two) == 2 * max(r["loaded_bytes"] for r in shared)
    # an 'lq' bundle ignores the connected text_image: its text branch sees the LQ image
    assert all(abs(r["hint_mean"] - lq_mean) < 2e-3 for r in two)


def test_shared_text_branch_without_text_image_names_the_input(comfy_server, tiny_sd15, hint_sensitive, hint_image):
    def attach(g, pos, neg, image):
        cnet = g.node("GlyphSR_TSControlNetLoader", control_net_name=hint_sensitive, second_control_net=SHARED,
                      beta=-1.0)
        applied = g.node("GlyphSR_ApplyTSControlNet", scene_positive=pos.out(0), scene_negative=neg.out(0),
                         text_positive=pos.out(0), text_negative=neg.out(0), control_net=cnet.out(0),
                         image=image.out(0), beta_text=1.0, beta_scene=0.0, strength=1.0, start_percent=0.0,
                         end_percent=1.0)
        return applied.out(0), applied.out(1)

    with pytest.raises(ComfyExecutionError, match="'text_image' is missing: this TS-ControlNet's shared text branch"):
        sample(comfy_server, tiny_sd15, hint_image, "t_shared_missing", attach)
