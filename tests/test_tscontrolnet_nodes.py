"""TS-ControlNet nodes and CONTROL_NET object against the ComfyUI stand-in (tests/comfy_standin).

The stand-in ControlNet is a single conv over the hint, so the branches' residuals really depend on
their weights, the LQ image and the glyph channel; the blending, strength, chaining, copying and
attachment logic under test is ours.
"""

from __future__ import annotations

import os

import pytest
import torch
from safetensors.torch import save_file

import folder_paths
import comfy.controlnet
from glyphsr_core.tscontrolnet import TSBundle, init_text_from_scene, shared_bundle, write_bundle

H = W = 32  # image size; latent 4x4


def ldm_cn(seed: int, hint_channels: int = 3) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"input_hint_block.0.weight": torch.randn(4, hint_channels, 3, 3, generator=g),
            "zero_convs.0.0.weight": torch.randn(4, 4, 1, 1, generator=g),
            "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": torch.randn(4, 768, generator=g)}


@pytest.fixture(scope="module")
def cn_dir():
    path = os.path.join(folder_paths.models_dir, "controlnet")
    os.makedirs(path, exist_ok=True)
    save_file(ldm_cn(1), os.path.join(path, "scene.safetensors"))
    save_file(ldm_cn(2), os.path.join(path, "text.safetensors"))
    write_bundle(os.path.join(path, "ts_full.safetensors"), TSBundle(ldm_cn(1), ldm_cn(2), beta=0.5, base="sd15"))
    write_bundle(os.path.join(path, "ts_text_only.safetensors"), TSBundle(None, ldm_cn(2), beta=0.25))
    write_bundle(os.path.join(path, "ts_glyph.safetensors"),
                 TSBundle(ldm_cn(1), init_text_from_scene(ldm_cn(1), glyph_channel=True), beta=1.0,
                          text_hint="lq+glyph"))
    write_bundle(os.path.join(path, "ts_shared.safetensors"), shared_bundle(ldm_cn(1), beta=0.5))
    write_bundle(os.path.join(path, "ts_restored.safetensors"),
                 TSBundle(ldm_cn(1), ldm_cn(2), beta=0.5, text_hint="restored"))
    save_file({"lora.weight": torch.zeros(2)}, os.path.join(path, "not_a_controlnet.safetensors"))
    return path


@pytest.fixture
def nodes(pack):
    return pack.nodes.ts_controlnet


def load(nodes, first, second="None", beta=-1.0):
    return nodes.TSControlNetLoader().load(first, second, beta)[0]


def image(seed=0, batch=1):
    return torch.rand(batch, H, W, 3, generator=torch.Generator().manual_seed(seed))


def run_control(cnet, x=None, t=0.5, batched_number=1):
    cnet.pre_run(Model(), lambda p: 1.0 - p)
    x = torch.randn(1, 4, H // 8, W // 8, generator=torch.Generator().manual_seed(9)) if x is None else x
    return cnet.get_control(x, torch.tensor([t] * x.shape[0]), {"c_crossattn": torch.zeros(1)},
                            batched_number, {})


class Model:
    model_sampling = object()


def plain(seed: int, hint, hint_channels: int = 3):
    c = comfy.controlnet.load_controlnet_state_dict(ldm_cn(seed, hint_channels))
    return c.set_cond_hint(hint)


def hint_of(img):
    return img.movedim(-1, 1)


def conds(tag: str):
    return [[torch.full((1, 2, 8), float(len(tag))), {"tag": tag}]]


# ------------------------------------------------------------------ loader

def test_loader_lists_controlnet_files_and_builds_two_branches(nodes, cn_dir):
    files = nodes.TSControlNetLoader.INPUT_TYPES()["required"]["control_net_name"][0]
    assert {"scene.safetensors", "ts_full.safetensors", "ts_text_only.safetensors"} <= set(files)
    assert nodes.TSControlNetLoader.INPUT_TYPES()["required"]["second_control_net"][0][0] == "None"
    cnet = load(nodes, "ts_full.safetensors")
    assert isinstance(cnet, comfy.controlnet.ControlBase)
    assert isinstance(cnet.scene, comfy.controlnet.ControlNet) and isinstance(cnet.text, comfy.controlnet.ControlNet)
    assert cnet.beta == 0.5 and cnet.glyph_channels == 0
    assert load(nodes, "ts_full.safetensors", beta=0.8).beta == 0.8
    assert load(nodes, "ts_text_only.safetensors", "scene.safetensors").beta == 0.25
    assert load(nodes, "scene.safetensors", "text.safetensors").beta == 0.5
    assert load(nodes, "ts_glyph.safetensors").glyph_channels == 1


def test_loader_errors_name_the_input(nodes, cn_dir):
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        load(nodes, "missing.safetensors")
    with pytest.raises(ValueError, match="control_net_name not_a_controlnet.safetensors is not a ControlNet"):
        load(nodes, "not_a_controlnet.safetensors", "scene.safetensors")
    with pytest.raises(ValueError, match="text-only bundle: choose your scene ControlNet"):
        load(nodes, "ts_text_only.safetensors")
    with pytest.raises(ValueError, match="beta must be between 0 and 1"):
        load(nodes, "ts_full.safetensors", beta=1.5)


def test_a_diffusers_layout_branch_comfyui_cannot_convert_is_refused_with_a_sentence(nodes, cn_dir):
    g = torch.Generator().manual_seed(4)
    diffusers_sd = {"conv_in.weight": torch.randn(4, 4, 3, 3, generator=g),
                    "controlnet_cond_embedding.conv_in.weight": torch.randn(4, 3, 3, 3, generator=g),
                    "controlnet_down_blocks.0.weight": torch.randn(4, 4, 1, 1, generator=g)}
    write_bundle(os.path.join(cn_dir, "ts_diffusers.safetensors"), TSBundle(diffusers_sd, diffusers_sd, beta=0.5))
    with pytest.raises(ValueError, match="scene branch is in diffusers layout with an architecture ComfyUI cannot "
                                         "convert .*original ControlNet layout"):
        load(nodes, "ts_diffusers.safetensors")


# ------------------------------------------------------------------ blending, strength, range, chaining

def configured(nodes, name, beta, mask=None, glyph=None, strength=1.0, img=None, beta_scene=None, second="None",
               text_image=None):
    img = image() if img is None else img
    cnet = load(nodes, name, second)
    out = nodes.ApplyTSControlNet().apply(conds("sp"), conds("sn"), conds("tp"), conds("tn"), cnet, img,
                                          beta, beta if beta_scene is None else beta_scene, strength, 0.0, 1.0,
                                          text_image=text_image, glyph=glyph, text_mask=mask)
    return out[0][0][1]["control"]


def test_beta_zero_equals_the_scene_controlnet_and_one_the_text(nodes, cn_dir):
    img = image()
    scene_alone = run_control(plain(1, hint_of(img)))
    text_alone = run_control(plain(2, hint_of(img)))
    for key in ("middle", "output"):
        for got, want in zip(run_control(configured(nodes, "ts_full.safetensors", 0.0))[key], scene_alone[key]):
            assert torch.equal(got, want)
        for got, want in zip(run_control(configured(nodes, "ts_full.safetensors", 1.0))[key], text_alone[key]):
            assert torch.equal(got, want)
    half = run_control(configured(nodes, "ts_full.safetensors", 0.5))
    torch.testing.assert_close(half["output"][0], (scene_alone["output"][0] + text_alone["output"][0]) / 2)


def test_strength_applies_once_to_the_blend(nodes, cn_dir):
    base = run_control(configured(nodes, "ts_full.safetensors", 0.5))
    strong = run_control(configured(nodes, "ts_full.safetensors", 0.5, strength=2.0))
    for a, b in zip(base["output"], strong["output"]):
        torch.testing.assert_close(b, 2 * a)


def test_text_mask_selects_the_text_branch_where_text_is(nodes, cn_dir):
    img = image()
    mask = torch.zeros(1, H, W)
    mask[:, :, : W // 2] = 1.0
    out = run_control(configured(nodes, "ts_full.safetensors", 1.0, mask=mask, beta_scene=0.0))
    scene_alone, text_alone = run_control(plain(1, hint_of(img))), run_control(plain(2, hint_of(img)))
    got, s, t = out["output"][0], scene_alone["output"][0], text_alone["output"][0]
    half = got.shape[-1] // 2
    assert torch.equal(got[..., :half], t[..., :half]) and torch.equal(got[..., half:], s[..., half:])


def test_mask_of_a_batch_addresses_the_same_image_as_the_hint_under_cfg(nodes, cn_dir):
    """Cond and uncond stacked (x = [img0, img1, img0, img1]): mask i must go with hint i, as ComfyUI's
    broadcast_image_to tiles the hint; image 0 is all text, image 1 has none."""
    img = image(batch=2)
    mask = torch.zeros(2, H, W)
    mask[0] = 1.0
    x = torch.randn(2, 4, H // 8, W // 8, generator=torch.Generator().manual_seed(9)).repeat(2, 1, 1, 1)
    out = run_control(configured(nodes, "ts_full.safetensors", 1.0, mask=mask, beta_scene=0.0, img=img), x=x,
                      batched_number=2)["output"][0]
    scene_alone = run_control(plain(1, hint_of(img)), x=x, batched_number=2)["output"][0]
    text_alone = run_control(plain(2, hint_of(img)), x=x, batched_number=2)["output"][0]
    assert out.shape[0] == 4
    for i in (0, 2):
        assert torch.equal(out[i], text_alone[i])
    for i in (1, 3):
        assert torch.equal(out[i], scene_alone[i])
    assert not torch.equal(text_alone[0], text_alone[1])  # the hint differs per image, so the check can fail


def test_timestep_range_and_chaining_follow_comfyui(nodes, cn_dir):
    img = image()
    prev = plain(3, hint_of(img))
    cnet = configured(nodes, "ts_full.safetensors", 0.5)
    cnet.set_previous_controlnet(prev)
    prev_alone = run_control(plain(3, hint_of(img)))
    ts_alone = run_control(configured(nodes, "ts_full.safetensors", 0.5))
    chained = run_control(cnet)
    torch.testing.assert_close(chained["output"][0], prev_alone["output"][0] + ts_alone["output"][0])
    # outside start/end percent only the previous ControlNet's residuals remain
    out = nodes.ApplyTSControlNet().apply(conds("a"), conds("b"), conds("c"), conds("d"),
                                          load(nodes, "ts_full.safetensors"), img, 0.5, 0.5, 1.0, 0.0, 0.3)
    late = out[0][0][1]["control"].set_previous_controlnet(plain(3, hint_of(img)))
    got = run_control(late, t=0.2)  # percent_to_sigma here: 1 - p, so the range is [1.0, 0.7]
    assert torch.equal(got["output"][0], prev_alone["output"][0])


def test_get_models_cleanup_copy_and_memory(nodes, cn_dir):
    img = image()
    cnet = configured(nodes, "ts_full.safetensors", 0.5, mask=torch.ones(1, H, W))
    prev = plain(3, hint_of(img))
    cnet.set_previous_controlnet(prev)
    models = cnet.get_models()
    assert models == [prev.control_model_wrapped, cnet.scene.control_model_wrapped, cnet.text.control_model_wrapped]
    # the chain's, the scene branch's and the text branch's needs add up
    prev.inference_memory_requirements = lambda dtype: 1
    cnet.scene.inference_memory_requirements = lambda dtype: 20
    cnet.text.inference_memory_requirements = lambda dtype: 300
    assert cnet.inference_memory_requirements(torch.float32) == 321
    run_control(cnet)
    assert cnet.scene.cond_hint is not None and cnet.beta_map._cache
    copy = cnet.copy()
    assert copy.scene is not cnet.scene and copy.scene.control_model is cnet.scene.control_model
    assert copy.beta_map is not cnet.beta_map and torch.equal(copy.beta_map.mask, cnet.beta_map.mask)
    assert copy.strength == cnet.strength and copy.cond_hint_original is cnet.cond_hint_original
    cnet.cleanup()
    assert cnet.scene.cond_hint is None and cnet.text.cond_hint is None and not cnet.beta_map._cache
    assert prev.cond_hint is None and cnet.timestep_range is None


# ------------------------------------------------------------------ glyph hint

def test_glyph_channel_reaches_the_text_branch(nodes, cn_dir):
    img = image()
    glyph = image(5)
    # the text branch is the scene branch plus a zero glyph channel: same output at beta 1
    out = run_control(configured(nodes, "ts_glyph.safetensors", 1.0, glyph=glyph))
    scene_alone = run_control(plain(1, hint_of(img)))
    torch.testing.assert_close(out["output"][0], scene_alone["output"][0], rtol=0, atol=1e-5)
    cnet = configured(nodes, "ts_glyph.safetensors", 1.0, glyph=glyph)
    run_control(cnet)
    assert cnet.scene.cond_hint is None  # weight 0 everywhere: the scene branch is not run
    cnet = configured(nodes, "ts_glyph.safetensors", 0.5, glyph=glyph)
    run_control(cnet)
    assert cnet.text.cond_hint.shape[1] == 4 and cnet.scene.cond_hint.shape[1] == 3
    torch.testing.assert_close(cnet.text.cond_hint[:, 3], glyph.mean(-1))


def test_glyph_errors(nodes, cn_dir):
    with pytest.raises(ValueError, match="'glyph' is missing: .*'lq\\+glyph'"):
        configured(nodes, "ts_glyph.safetensors", 1.0)
    with pytest.raises(ValueError, match="'glyph' is 16x32 but the image is 32x32"):
        configured(nodes, "ts_glyph.safetensors", 1.0, glyph=torch.rand(1, 32, 16, 3))


def test_a_glyph_is_not_used_by_a_text_branch_without_glyph_channels(nodes, cn_dir):
    """One graph serves every text branch: a connected glyph map changes nothing for an 'lq' branch."""
    with_glyph = configured(nodes, "ts_full.safetensors", 0.5, glyph=image(5))
    without = configured(nodes, "ts_full.safetensors", 0.5)
    assert with_glyph.glyph_hint is None
    assert torch.equal(run_control(with_glyph)["output"][0], run_control(without)["output"][0])


def test_mask_errors(nodes, cn_dir):
    with pytest.raises(ValueError, match="'text_mask' is 16x16 but the image is 32x32"):
        configured(nodes, "ts_full.safetensors", 0.5, mask=torch.ones(1, 16, 16))
    with pytest.raises(ValueError, match="'text_mask' has a batch of 3; expected 1 or the image batch \\(2\\)"):
        configured(nodes, "ts_full.safetensors", 0.5, mask=torch.ones(3, H, W), img=image(batch=2))


# ------------------------------------------------------------------ attachment

def test_apply_attaches_like_controlnet_apply_advanced(nodes, cn_dir):
    cnet = load(nodes, "ts_full.safetensors")
    prev = plain(3, hint_of(image()))
    sp = [[torch.zeros(1), {"tag": "a"}], [torch.zeros(1), {"tag": "b", "control": prev}]]
    sn, tp, tn = conds("sn"), conds("tp"), conds("tn")
    out = nodes.ApplyTSControlNet().apply(sp, sn, tp, tn, cnet, image(), -1.0, -1.0, 0.7, 0.1, 0.9)
    assert len(out) == 4 and all(len(c) == len(i) for c, i in zip(out, (sp, sn, tp, tn)))
    plain_one = out[0][0][1]["control"]
    chained = out[0][1][1]["control"]
    # one object per distinct previous ControlNet, shared by all four conds (so they batch together)
    assert all(c[0][1]["control"] is plain_one for c in out[1:])
    assert chained is not plain_one and chained.previous_controlnet is prev and plain_one.previous_controlnet is None
    assert all(e[1]["control_apply_to_uncond"] is False for c in out for e in c)
    assert plain_one is not cnet and plain_one.strength == 0.7 and plain_one.timestep_percent_range == (0.1, 0.9)
    assert plain_one.beta == 0.5  # -1: the loader's beta
    assert "control" not in sn[0][1] and sp[1][1]["control"] is prev  # inputs untouched
    assert out[0][0][1]["tag"] == "a" and out[3][0][1]["tag"] == "tn"
    assert nodes.ApplyTSControlNet().apply(sp, sn, tp, tn, cnet, image(), -1.0, -1.0, 0.0, 0.0, 1.0) == (sp, sn, tp, tn)


def test_apply_refuses_a_plain_controlnet(nodes, cn_dir):
    with pytest.raises(TypeError, match="'control_net' must come from GlyphSR Load TS-ControlNet"):
        nodes.ApplyTSControlNet().apply(conds("a"), conds("b"), conds("c"), conds("d"), plain(1, None), image(),
                                        0.5, 0.5, 1.0, 0.0, 1.0)


def test_comfyui_apply_controlnet_path_works_with_scalar_beta(nodes, cn_dir):
    """ComfyUI's Apply ControlNet calls copy().set_cond_hint(hint, strength, range, vae=..., extra_concat=[])."""
    img = image()
    cnet = load(nodes, "ts_full.safetensors", beta=0.0)
    attached = cnet.copy().set_cond_hint(hint_of(img), 1.0, (0.0, 1.0), vae=None, extra_concat=[])
    attached.set_previous_controlnet(None)
    scene_alone = run_control(plain(1, hint_of(img)))
    assert torch.equal(run_control(attached)["output"][0], scene_alone["output"][0])
    with pytest.raises(ValueError, match="text_hint .lq\\+glyph.. expects a glyph map as well"):
        load(nodes, "ts_glyph.safetensors").copy().set_cond_hint(hint_of(img), 1.0, (0.0, 1.0), vae=None,
                                                                   extra_concat=[])


def test_model_mismatch_is_reported_in_pre_run(nodes, cn_dir):
    class SDXL:
        model_sampling = object()

        class model_config:
            unet_config = {"context_dim": 2048, "adm_in_channels": 2816}

    cnet = configured(nodes, "ts_full.safetensors", 0.5)
    with pytest.raises(ValueError, match=r"scene branch was made for SD1\.x .* model being sampled is SDXL"):
        cnet.pre_run(SDXL(), lambda p: 1.0 - p)


def test_nodes_are_registered(pack):
    assert pack.NODE_DISPLAY_NAME_MAPPINGS["GlyphSR_TSControlNetLoader"] == "GlyphSR Load TS-ControlNet"
    assert pack.NODE_DISPLAY_NAME_MAPPINGS["GlyphSR_ApplyTSControlNet"] == "GlyphSR Apply TS-ControlNet"


# ------------------------------------------------------------------ shared-weights text branch

def restored(seed=7):
    return image(seed)


def test_shared_text_branch_loads_the_scene_weights_once(nodes, cn_dir):
    before = len(comfy.controlnet.loaded_state_dicts)
    cnet = load(nodes, "scene.safetensors", nodes.SHARED)
    assert len(comfy.controlnet.loaded_state_dicts) == before + 1  # one ControlNet built, not two
    assert cnet.shared and cnet.text_hint == "restored" and cnet.text_sees == "restored" and cnet.beta == 0.5
    assert cnet.text.control_model is cnet.scene.control_model
    applied = configured(nodes, "scene.safetensors", 0.5, second=nodes.SHARED, text_image=restored())
    models = applied.get_models()
    assert len(models) == 1 and models[0] is applied.scene.control_model_wrapped is applied.text.control_model_wrapped


def test_shared_text_branch_sees_the_restored_image_and_the_scene_branch_the_lq(nodes, cn_dir):
    img, r = image(), restored()
    lq_alone = run_control(plain(1, hint_of(img)))
    r_alone = run_control(plain(1, hint_of(r)))
    cnet = configured(nodes, "scene.safetensors", 0.5, second=nodes.SHARED, img=img, text_image=r)
    half = run_control(cnet)
    assert torch.equal(cnet.scene.cond_hint, hint_of(img)) and torch.equal(cnet.text.cond_hint, hint_of(r))
    torch.testing.assert_close(half["output"][0], (lq_alone["output"][0] + r_alone["output"][0]) / 2)
    assert not torch.allclose(lq_alone["output"][0], r_alone["output"][0])  # the hints make the branches differ
    zero = run_control(configured(nodes, "scene.safetensors", 0.0, second=nodes.SHARED, img=img, text_image=r))
    for key in ("middle", "output"):
        for got, want in zip(zero[key], lq_alone[key]):
            assert torch.equal(got, want)  # beta 0 == the plain scene ControlNet
    one = run_control(configured(nodes, "scene.safetensors", 1.0, second=nodes.SHARED, img=img, text_image=r))
    assert torch.equal(one["output"][0], r_alone["output"][0])


def test_shared_text_branch_with_a_mask_steers_only_the_text(nodes, cn_dir):
    img, r = image(), restored()
    mask = torch.zeros(1, H, W)
    mask[:, :, : W // 2] = 1.0  # text on the left half
    out = run_control(configured(nodes, "scene.safetensors", 1.0, beta_scene=0.0, mask=mask, second=nodes.SHARED,
                                 img=img, text_image=r))["output"][0]
    lq_alone = run_control(plain(1, hint_of(img)))["output"][0]
    r_alone = run_control(plain(1, hint_of(r)))["output"][0]
    left, right = slice(0, out.shape[-1] // 2), slice(out.shape[-1] // 2, None)
    torch.testing.assert_close(out[..., left], r_alone[..., left])
    torch.testing.assert_close(out[..., right], lq_alone[..., right])


def test_shared_bundle_file_holds_the_scene_weights_once(nodes, cn_dir):
    from safetensors import safe_open

    with safe_open(os.path.join(cn_dir, "ts_shared.safetensors"), framework="pt") as handle:
        keys = list(handle.keys())
        assert handle.metadata()["text_weights"] == "scene" and handle.metadata()["text_hint"] == "restored"
    assert keys and all(k.startswith("scene.") for k in keys)
    cnet = load(nodes, "ts_shared.safetensors")
    assert cnet.shared and cnet.text.control_model is cnet.scene.control_model


def test_a_trained_bundle_gets_the_hint_it_records(nodes, cn_dir):
    img, r = image(), restored()
    cnet = configured(nodes, "ts_restored.safetensors", 0.5, img=img, text_image=r)
    run_control(cnet)
    assert torch.equal(cnet.text.cond_hint, hint_of(r)) and torch.equal(cnet.scene.cond_hint, hint_of(img))
    lq = configured(nodes, "ts_full.safetensors", 0.5, img=img, text_image=r)  # an 'lq' branch ignores R
    run_control(lq)
    assert torch.equal(lq.text.cond_hint, hint_of(img))
    copied = cnet.copy()
    assert copied.text_image_hint is cnet.text_image_hint and copied.text_hint == "restored"


def test_shared_text_branch_errors(nodes, cn_dir):
    with pytest.raises(ValueError, match="'text_image' is missing: this TS-ControlNet's shared text branch"):
        configured(nodes, "scene.safetensors", 0.5, second=nodes.SHARED)
    with pytest.raises(ValueError, match="'text_image' is missing: .*text_hint 'restored'"):
        configured(nodes, "ts_restored.safetensors", 0.5)
    with pytest.raises(ValueError, match="'text_image' is 16x32 but the image is 32x32"):
        configured(nodes, "scene.safetensors", 0.5, second=nodes.SHARED, text_image=torch.rand(1, 32, 16, 3))
    with pytest.raises(ValueError, match="ts_full.safetensors already holds a text branch"):
        load(nodes, "ts_full.safetensors", nodes.SHARED)
    with pytest.raises(ValueError, match="ts_text_only.safetensors is a text-only bundle"):
        load(nodes, "ts_text_only.safetensors", nodes.SHARED)
    cnet = load(nodes, "scene.safetensors", nodes.SHARED)
    with pytest.raises(ValueError, match="connect text_image"):
        cnet.copy().set_cond_hint(hint_of(image()))  # Apply ControlNet (core) cannot feed the text branch


def test_a_missing_file_is_reported_with_the_folder_searched(nodes, cn_dir):
    validate = nodes.TSControlNetLoader.VALIDATE_INPUTS
    assert validate("scene.safetensors", nodes.SHARED) is True
    assert validate("ts_full.safetensors", "None") is True
    assert validate("ts_text_only.safetensors", "scene.safetensors") is True
    message = validate("glyphsr_text_sd15.safetensors", "scene.safetensors")
    assert message.startswith("control_net_name 'glyphsr_text_sd15.safetensors' is not in the controlnet folder")
    assert cn_dir in message
    assert validate("scene.safetensors", "tile.safetensors").startswith("second_control_net 'tile.safetensors'")
