"""TS-ControlNet bundle format, validation, branch pairing, text-branch init and the ts-bundle CLI."""

from __future__ import annotations

import json
import struct

import pytest
import torch
from safetensors.torch import load_file, save_file

from glyphsr_core.cli import main as cli_main
from glyphsr_core.tscontrolnet import (
    FORMAT,
    BundleError,
    TSBundle,
    assemble_branches,
    check_model_match,
    detect_base,
    init_text_from_scene,
    inspect_branch,
    read_bundle,
    shared_bundle,
    validate_bundle,
    write_bundle,
)


def ldm_controlnet(seed: int = 0, hint_channels: int = 3, context: int = 768, adm: int | None = None,
                   prefix: str = "", width: int = 8) -> dict:
    """A small state dict with the key layout of an ldm ControlNet (enough for the format checks)."""
    g = torch.Generator().manual_seed(seed)
    sd = {
        "input_hint_block.0.weight": torch.randn(16, hint_channels, 3, 3, generator=g),
        "input_hint_block.0.bias": torch.randn(16, generator=g),
        "input_blocks.0.0.weight": torch.randn(width, 4, 3, 3, generator=g),
        "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": torch.randn(width, context, generator=g),
        "zero_convs.0.0.weight": torch.randn(width, width, 1, 1, generator=g),
        "zero_convs.0.0.bias": torch.randn(width, generator=g),
        "middle_block_out.0.weight": torch.randn(width, width, 1, 1, generator=g),
    }
    if adm:
        sd["label_emb.0.0.weight"] = torch.randn(16, adm, generator=g)
    return {prefix + k: v for k, v in sd.items()}


def save(path, sd, metadata=None):
    save_file(sd, str(path), metadata=metadata)
    return path


# ------------------------------------------------------------------ layout

def test_inspect_recognises_the_three_layouts_and_the_base():
    assert inspect_branch(ldm_controlnet()).layout == "ldm"
    info = inspect_branch(ldm_controlnet(prefix="control_model."))
    assert info.layout == "ldm/control_model" and info.hint_key == "control_model.input_hint_block.0.weight"
    assert detect_base(ldm_controlnet()) == "sd15"
    assert detect_base(ldm_controlnet(context=2048, adm=2816)) == "sdxl"
    assert detect_base(ldm_controlnet(context=1024)) == "other"
    diff = {"controlnet_cond_embedding.conv_in.weight": torch.zeros(16, 3, 3, 3),
            "controlnet_down_blocks.0.weight": torch.zeros(8, 8, 1, 1),
            "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight": torch.zeros(8, 2048),
            "add_embedding.linear_1.weight": torch.zeros(16, 2816)}
    assert inspect_branch(diff).layout == "diffusers" and detect_base(diff) == "sdxl"


def test_non_controlnet_state_dict_is_refused_with_its_name():
    with pytest.raises(BundleError, match="my_lora is not a ControlNet"):
        inspect_branch({"lora_unet_down.weight": torch.zeros(2, 2)}, "my_lora")


def test_model_match_names_both_bases():
    sd15 = inspect_branch(ldm_controlnet())
    check_model_match(sd15, 768, None)
    with pytest.raises(BundleError, match=r"made for SD1\.x .* the model being sampled is SDXL"):
        check_model_match(sd15, 2048, 2816, "scene")


# ------------------------------------------------------------------ bundle round trip and validation

def test_round_trip_keeps_tensors_and_settings(tmp_path):
    scene = ldm_controlnet(1)
    text = init_text_from_scene(scene, glyph_channel=True)
    bundle = TSBundle(scene=scene, text=text, beta=0.25, text_hint="lq+glyph", base="sd15")
    path = write_bundle(tmp_path / "b.safetensors", bundle)
    raw = load_file(str(path))
    assert set(raw) == {"scene." + k for k in scene} | {"text." + k for k in text}
    back = read_bundle(path)
    assert (back.beta, back.text_hint, back.base) == (0.25, "lq+glyph", "sd15")
    assert back.glyph_channels == 1
    for key in scene:
        assert torch.equal(back.scene[key], scene[key]) and torch.equal(back.text[key], text[key])
    with open(path, "rb") as f:  # the metadata is plain text any safetensors reader shows
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    assert header["__metadata__"]["glyphsr_format"] == FORMAT == "ts-controlnet/1"


def test_text_only_bundle_is_valid(tmp_path):
    path = write_bundle(tmp_path / "t.safetensors", TSBundle(scene=None, text=ldm_controlnet(2), beta=0.5))
    back = read_bundle(path)
    assert back.scene is None and back.text_hint == "lq"


def test_shared_bundle_stores_the_scene_weights_once_and_reads_back_shared(tmp_path):
    scene = ldm_controlnet(1)
    path = write_bundle(tmp_path / "s.safetensors", shared_bundle(scene, beta=0.5, base="sd15"))
    assert set(load_file(str(path))) == {"scene." + k for k in scene}
    back = read_bundle(path)
    assert back.shared and back.text is back.scene and back.text_hint == "restored" and back.base == "sd15"
    assert all(torch.equal(back.scene[k], scene[k]) for k in scene)


def test_restored_hints_are_valid_for_trained_branches():
    scene = ldm_controlnet(1)
    validate_bundle(TSBundle(scene=scene, text=ldm_controlnet(2), text_hint="restored", base="sd15"))
    validate_bundle(TSBundle(scene=scene, text=init_text_from_scene(scene, glyph_channel=True),
                             text_hint="restored+glyph", base="sd15"))
    with pytest.raises(BundleError, match="text_hint 'restored' needs the text branch to take the same hint"):
        validate_bundle(TSBundle(scene=scene, text=init_text_from_scene(scene, glyph_channel=True),
                                 text_hint="restored", base="sd15"))


@pytest.mark.parametrize("metadata, message", [
    ({"text_weights": "text"}, "text_weights='text' is not supported"),
    ({"text_weights": "scene", "extra_text": True}, r"shared\) but the file has 'text.' tensors"),
    ({"text_weights": "scene", "text_hint": "lq"}, "shared text branch must see the restored image"),
])
def test_shared_metadata_errors(tmp_path, metadata, message):
    from glyphsr_core.tscontrolnet.bundle import split_bundle

    tensors = {"scene." + k: v for k, v in ldm_controlnet(1).items()}
    if metadata.pop("extra_text", False):
        tensors.update({"text." + k: v for k, v in ldm_controlnet(2).items()})
    meta = {"glyphsr_format": FORMAT, "beta": "0.5", "text_hint": "restored", "base": "sd15", **metadata}
    with pytest.raises(BundleError, match=message):
        split_bundle(tensors, meta, "b")


@pytest.mark.parametrize("change, message", [
    (lambda b: setattr(b, "beta", 1.5), "beta must be between 0 and 1"),
    (lambda b: setattr(b, "text_hint", "glyph"), "text_hint must be one of"),
    (lambda b: setattr(b, "base", "flux"), "base must be one of"),
    (lambda b: setattr(b, "base", "sdxl"), "base is 'sdxl' but the text branch's shapes are those of 'sd15'"),
    (lambda b: b.text.pop("zero_convs.0.0.bias"), r"different architectures: 1 tensor\(s\) only in scene "
                                                  r"\[zero_convs\.0\.0\.bias\]"),
    (lambda b: b.text.__setitem__("zero_convs.0.0.weight", torch.zeros(8, 4, 1, 1)),
     r"differ in shape at 'zero_convs\.0\.0\.weight': scene \(8, 8, 1, 1\) vs text \(8, 4, 1, 1\)"),
    (lambda b: b.text.__setitem__("input_hint_block.0.weight", torch.zeros(16, 4, 3, 3)),
     "text_hint 'lq' needs the text branch to take the same hint"),
    (lambda b: b.text.__setitem__("input_hint_block.0.weight", torch.zeros(16, 5, 3, 3))
     or setattr(b, "text_hint", "lq+glyph"), "1 or 3 channel"),
    (lambda b: setattr(b, "text_hint", "lq+glyph"), "text_hint 'lq\\+glyph' needs"),
    (lambda b: setattr(b, "text", {}), "has no text branch"),
])
def test_validation_names_the_mismatch(change, message):
    bundle = TSBundle(scene=ldm_controlnet(1), text=ldm_controlnet(2), beta=0.5, base="sd15")
    change(bundle)
    with pytest.raises(BundleError, match=message):
        validate_bundle(bundle)


def test_layouts_must_match():
    bundle = TSBundle(scene=ldm_controlnet(1), text=ldm_controlnet(2, prefix="control_model."))
    with pytest.raises(BundleError, match="ldm layout and the text branch in ldm/control_model layout"):
        validate_bundle(bundle)


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        read_bundle(tmp_path / "missing.safetensors")
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(BundleError, match="corrupt.safetensors is not a readable .safetensors file"):
        read_bundle(corrupt)
    pickle = tmp_path / "cn.pth"
    pickle.write_bytes(b"whatever")
    with pytest.raises(BundleError, match="only .safetensors files are loaded"):
        read_bundle(pickle)
    plain = save(tmp_path / "plain.safetensors", ldm_controlnet())
    with pytest.raises(BundleError, match="not a TS-ControlNet bundle"):
        read_bundle(plain)
    future = save(tmp_path / "future.safetensors", {"text.a": torch.zeros(1)}, {"glyphsr_format": "ts-controlnet/2"})
    with pytest.raises(BundleError, match="ts-controlnet/2.* is not supported"):
        read_bundle(future)
    stray = save(tmp_path / "stray.safetensors", {"text.a": torch.zeros(1), "other": torch.zeros(1)},
                 {"glyphsr_format": FORMAT})
    with pytest.raises(BundleError, match=r"outside the 'scene.'/'text.' branches: \['other'\]"):
        read_bundle(stray)


# ------------------------------------------------------------------ pairing (loader logic)

def test_assemble_accepts_each_documented_combination(tmp_path):
    scene_sd, text_sd = ldm_controlnet(1), ldm_controlnet(2)
    scene = save(tmp_path / "scene.safetensors", scene_sd)
    text = save(tmp_path / "text.safetensors", text_sd)
    full = write_bundle(tmp_path / "full.safetensors", TSBundle(scene_sd, text_sd, beta=0.3, base="sd15"))
    text_only = write_bundle(tmp_path / "tonly.safetensors", TSBundle(None, text_sd, beta=0.7))

    assert assemble_branches(full).beta == 0.3
    b = assemble_branches(text_only, scene)
    assert b.beta == 0.7 and torch.equal(b.scene["zero_convs.0.0.weight"], scene_sd["zero_convs.0.0.weight"])
    b = assemble_branches(scene, text_only)
    assert b.beta == 0.7 and torch.equal(b.text["zero_convs.0.0.weight"], text_sd["zero_convs.0.0.weight"])
    b = assemble_branches(scene, text)
    assert (b.beta, b.text_hint, b.base) == (0.5, "lq", "sd15")
    glyph = save(tmp_path / "glyph.safetensors", init_text_from_scene(scene_sd, glyph_channel=True))
    assert assemble_branches(scene, glyph).text_hint == "lq+glyph"


def test_assemble_errors_name_the_input(tmp_path):
    scene_sd = ldm_controlnet(1)
    scene = save(tmp_path / "scene.safetensors", scene_sd)
    full = write_bundle(tmp_path / "full.safetensors", TSBundle(scene_sd, ldm_controlnet(2)))
    text_only = write_bundle(tmp_path / "tonly.safetensors", TSBundle(None, ldm_controlnet(2)))
    other = save(tmp_path / "lora.safetensors", {"lora.weight": torch.zeros(2)})
    wide = save(tmp_path / "wide.safetensors", ldm_controlnet(3, width=16))
    with pytest.raises(BundleError, match="already holds both branches"):
        assemble_branches(full, scene)
    with pytest.raises(BundleError, match="text-only bundle: choose your scene ControlNet"):
        assemble_branches(text_only)
    with pytest.raises(BundleError, match="is a plain ControlNet .* choose the text branch"):
        assemble_branches(scene)
    with pytest.raises(BundleError, match="second_control_net lora.safetensors is not a ControlNet"):
        assemble_branches(scene, other)
    with pytest.raises(BundleError, match="second_control_net full.safetensors is a full bundle"):
        assemble_branches(scene, full)
    with pytest.raises(BundleError, match="differ in shape"):
        assemble_branches(scene, wide)
    with pytest.raises(FileNotFoundError, match="second_control_net not found"):
        assemble_branches(scene, tmp_path / "nope.safetensors")


# ------------------------------------------------------------------ init_text_from_scene

def test_init_copies_without_touching_the_scene():
    scene = ldm_controlnet(prefix="control_model.")
    before = {k: v.clone() for k, v in scene.items()}
    text = init_text_from_scene(scene, glyph_channel=True)
    w = text["control_model.input_hint_block.0.weight"]
    assert w.shape == (16, 4, 3, 3) and torch.equal(w[:, :3], scene["control_model.input_hint_block.0.weight"])
    assert w[:, 3:].abs().sum() == 0
    text["control_model.zero_convs.0.0.weight"].add_(1)
    assert all(torch.equal(scene[k], before[k]) for k in scene)
    assert init_text_from_scene(scene)["control_model.input_hint_block.0.weight"].shape == (16, 3, 3, 3)


def tiny_diffusers_controlnet(conditioning_channels: int):
    from diffusers import ControlNetModel

    return ControlNetModel(block_out_channels=(8, 16), layers_per_block=1, cross_attention_dim=8,
                           down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                           conditioning_embedding_out_channels=(4, 8), attention_head_dim=2, norm_num_groups=4,
                           in_channels=4, conditioning_channels=conditioning_channels).eval()


@pytest.mark.parametrize("glyph_channel", [False, True])
def test_init_text_branch_matches_scene_outputs(glyph_channel):
    scene = tiny_diffusers_controlnet(3)
    torch.manual_seed(0)
    with torch.no_grad():  # diffusers zero-inits the output convs: give every weight a value
        for p in scene.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
    text_sd = init_text_from_scene(scene.state_dict(), glyph_channel=glyph_channel)
    text = tiny_diffusers_controlnet(4 if glyph_channel else 3)
    text.load_state_dict(text_sd)

    g = torch.Generator().manual_seed(1)
    x, lq = torch.randn(2, 4, 8, 8, generator=g), torch.rand(2, 3, 16, 16, generator=g)
    ctx, t = torch.randn(2, 5, 8, generator=g), torch.tensor([10, 500])
    hint = torch.cat([lq, torch.rand(2, 1, 16, 16, generator=g)], 1) if glyph_channel else lq
    with torch.no_grad():
        s_down, s_mid = scene(x, t, encoder_hidden_states=ctx, controlnet_cond=lq, return_dict=False)
        t_down, t_mid = text(x, t, encoder_hidden_states=ctx, controlnet_cond=hint, return_dict=False)
    assert s_mid.abs().sum() > 0
    for a, b in zip([*s_down, s_mid], [*t_down, t_mid]):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


# ------------------------------------------------------------------ CLI

def test_cli_init_text_from_scene_with_glyph(tmp_path):
    scene = save(tmp_path / "scene.safetensors", ldm_controlnet(1))
    out = tmp_path / "out.safetensors"
    rc = cli_main(["ts-bundle", "--scene", str(scene), "--init-text-from-scene", "--glyph-channel",
                   "--beta", "0.4", "-o", str(out)])
    assert rc == 0
    b = read_bundle(out)
    assert (b.beta, b.text_hint, b.base, b.glyph_channels) == (0.4, "lq+glyph", "sd15", 1)


def test_cli_text_only_and_explicit_base(tmp_path):
    scene = save(tmp_path / "scene.safetensors", ldm_controlnet(1, context=1024))
    text = save(tmp_path / "text.safetensors", ldm_controlnet(2, context=1024))
    out = tmp_path / "t.safetensors"
    assert cli_main(["ts-bundle", "--scene", str(scene), "--text", str(text), "--text-only", "-o", str(out)]) == 0
    b = read_bundle(out)
    assert b.scene is None and b.base == "other"
    assert set(load_file(str(out))) == {"text." + k for k in ldm_controlnet()}


def test_cli_shared_text_and_text_hint(tmp_path):
    scene = save(tmp_path / "scene.safetensors", ldm_controlnet(1))
    out = tmp_path / "shared.safetensors"
    assert cli_main(["ts-bundle", "--scene", str(scene), "--shared-text", "-o", str(out)]) == 0
    back = read_bundle(out)
    assert back.shared and back.text_hint == "restored" and back.base == "sd15"
    assert set(load_file(str(out))) == {"scene." + k for k in ldm_controlnet(1)}
    text = save(tmp_path / "text.safetensors", ldm_controlnet(2))
    trained = tmp_path / "trained.safetensors"
    assert cli_main(["ts-bundle", "--scene", str(scene), "--text", str(text), "--text-hint", "restored",
                     "-o", str(trained)]) == 0
    assert read_bundle(trained).text_hint == "restored" and not read_bundle(trained).shared
    assert cli_main(["ts-bundle", "--shared-text", "-o", str(out)]) == 2


def test_cli_errors_are_reported_not_raised(tmp_path, capsys):
    scene = save(tmp_path / "scene.safetensors", ldm_controlnet(1))
    wide = save(tmp_path / "wide.safetensors", ldm_controlnet(2, width=16))
    out = tmp_path / "o.safetensors"
    assert cli_main(["ts-bundle", "--scene", str(scene), "--text", str(wide), "-o", str(out)]) == 2
    assert "differ in shape" in capsys.readouterr().err and not out.exists()
    assert cli_main(["ts-bundle", "--scene", str(scene), "--text", str(scene), "--glyph-channel",
                     "-o", str(out)]) == 2
    assert "--glyph-channel only applies" in capsys.readouterr().err
    assert cli_main(["ts-bundle", "--scene", str(tmp_path / "x.safetensors"), "--init-text-from-scene",
                     "-o", str(out)]) == 2
    assert "--scene not found" in capsys.readouterr().err
