"""Residual blending of the TS-ControlNet branches (glyphsr_core.sampling.fusion)."""

from __future__ import annotations

import pytest
import torch

from glyphsr_core.sampling.fusion import (
    FusionError,
    beta_map_from_mask,
    blend_residuals,
    broadcast_batch,
)

# SD1.5-like residual layout at a 32x48 latent: 'output' in input-block order, one 'middle'.
LEVELS = [(32, 48), (32, 48), (16, 24), (8, 12)]


def residuals(seed: int, batch: int = 2, with_none: bool = False) -> dict:
    g = torch.Generator().manual_seed(seed)
    out = [torch.randn(batch, 4 * (i + 1), h, w, generator=g) for i, (h, w) in enumerate(LEVELS)]
    if with_none:
        out[1] = None
    return {"input": [], "middle": [torch.randn(batch, 16, 4, 6, generator=g)], "output": out}


def snapshot(d: dict) -> dict:
    return {k: [None if t is None else t.clone() for t in v] for k, v in d.items()}


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert len(a[key]) == len(b[key])
        for x, y in zip(a[key], b[key]):
            if x is None or y is None:
                assert x is None and y is None
            else:
                assert torch.equal(x, y)


def test_beta_zero_gives_scene_and_one_gives_text_exactly():
    scene, text = residuals(1), residuals(2)
    assert_same(blend_residuals(scene, text, beta=0.0), scene)
    assert_same(blend_residuals(scene, text, beta=1.0), text)


def test_half_blend_is_the_average_and_inputs_are_untouched():
    scene, text = residuals(1), residuals(2)
    before_s, before_t = snapshot(scene), snapshot(text)
    out = blend_residuals(scene, text, beta=0.5)
    for s, t, o in zip(scene["output"], text["output"], out["output"]):
        torch.testing.assert_close(o, (s + t) / 2)
        assert o is not s and o is not t
    # the caller scales the result in place (ComfyUI's control_merge): inputs must not follow
    for o in out["output"]:
        o.mul_(3.0)
    assert_same(scene, before_s)
    assert_same(text, before_t)


def test_full_mask_equals_scalar_and_empty_mask_equals_beta_scene():
    scene, text = residuals(1), residuals(2)
    ones = torch.ones(1, 256, 384)
    assert_same(blend_residuals(scene, text, beta_map=beta_map_from_mask(ones, 0.3, 0.9)),
                blend_residuals(scene, text, beta=0.3))
    zeros = torch.zeros(1, 256, 384)
    assert_same(blend_residuals(scene, text, beta_map=beta_map_from_mask(zeros, 0.3, 0.9)),
                blend_residuals(scene, text, beta=0.9))


def test_mask_selects_text_inside_and_scene_outside_at_every_level():
    scene, text = residuals(1), residuals(2)
    mask = torch.zeros(1, 256, 384)
    mask[:, :, :192] = 1.0  # left half is text
    out = blend_residuals(scene, text, beta_map=beta_map_from_mask(mask, 1.0, 0.0))
    for key in ("middle", "output"):
        for s, t, o in zip(scene[key], text[key], out[key]):
            assert o.shape == s.shape
            half = o.shape[-1] // 2
            assert torch.equal(o[..., :half], t[..., :half])
            assert torch.equal(o[..., half:], s[..., half:])


def test_area_resize_averages_a_partial_cell():
    scene = {"output": [torch.zeros(1, 1, 1, 1)]}
    text = {"output": [torch.ones(1, 1, 1, 1)]}
    mask = torch.zeros(1, 4, 4)
    mask[0, :2, :] = 1.0  # half of the pixels are text
    out = blend_residuals(scene, text, beta_map=beta_map_from_mask(mask, 1.0, 0.0))
    assert out["output"][0].item() == pytest.approx(0.5)


def test_dilation_grows_the_text_region():
    mask = torch.zeros(1, 9, 9)
    mask[0, 4, 4] = 1.0
    grown = beta_map_from_mask(mask, 1.0, 0.0, dilation=2).mask
    assert grown.shape == (1, 1, 9, 9)
    assert grown[0, 0, 2:7, 2:7].eq(1).all() and grown.sum() == 25
    assert mask.sum() == 1  # the input mask is not modified


def test_none_entries_and_missing_keys_are_zero_residuals():
    scene = residuals(1, with_none=True)
    text = residuals(2, with_none=True)
    out = blend_residuals(scene, text, beta=0.25)
    assert out["output"][1] is None
    assert out["input"] == []
    only_scene = {"output": [torch.ones(1, 2, 2, 2), None]}
    only_text = {"output": [None, torch.ones(1, 2, 2, 2)], "middle": [torch.ones(1, 2, 1, 1)]}
    mixed = blend_residuals(only_scene, only_text, beta=0.25)
    assert torch.allclose(mixed["output"][0], torch.full((1, 2, 2, 2), 0.75))
    assert torch.allclose(mixed["output"][1], torch.full((1, 2, 2, 2), 0.25))
    assert torch.allclose(mixed["middle"][0], torch.full((1, 2, 1, 1), 0.25))


def test_cond_and_uncond_share_the_batch():
    # batch of 2 images, sampled with cond + uncond -> residual batch 4 = [c0, c1, u0, u1]
    scene = {"output": [torch.zeros(4, 1, 2, 2)]}
    text = {"output": [torch.ones(4, 1, 2, 2)]}
    mask = torch.stack([torch.ones(16, 16), torch.zeros(16, 16)])  # image 0 all text, image 1 none
    out = blend_residuals(scene, text, beta_map=beta_map_from_mask(mask, 0.8, 0.1), chunks=2)
    per_item = out["output"][0].flatten(1).mean(1)
    torch.testing.assert_close(per_item, torch.tensor([0.8, 0.1, 0.8, 0.1]))
    # a batch-1 mask applies to every item
    one = blend_residuals(scene, text, beta_map=beta_map_from_mask(torch.ones(16, 16), 0.8, 0.1), chunks=2)
    torch.testing.assert_close(one["output"][0].flatten(1).mean(1), torch.full((4,), 0.8))


def test_broadcast_batch_tiles_like_the_hint():
    t = torch.arange(2.0).view(2, 1)
    assert broadcast_batch(t, 6, chunks=2).flatten().tolist() == [0, 1, 0, 0, 1, 0]
    assert broadcast_batch(t[:1], 3).flatten().tolist() == [0, 0, 0]


def test_mask_follows_the_hint_center_crop():
    # a square latent fed from a 2:1 image: the hint is centre-cropped, so the mask must be too
    mask = torch.zeros(1, 8, 16)
    mask[:, :, 4:12] = 1.0  # the centre square is text
    out = blend_residuals({"output": [torch.zeros(1, 1, 4, 4)]}, {"output": [torch.ones(1, 1, 4, 4)]},
                          beta_map=beta_map_from_mask(mask, 1.0, 0.0))
    assert torch.equal(out["output"][0], torch.ones(1, 1, 4, 4))


def test_half_precision_scalar_and_map_agree():
    scene = {"output": [torch.randn(2, 3, 4, 4).half()]}
    text = {"output": [torch.randn(2, 3, 4, 4).half()]}
    by_map = blend_residuals(scene, text, beta_map=beta_map_from_mask(torch.ones(1, 32, 32), 0.35, 0.0))
    by_scalar = blend_residuals(scene, text, beta=0.35)
    assert by_map["output"][0].dtype == torch.float16
    assert torch.equal(by_map["output"][0], by_scalar["output"][0])


@pytest.mark.parametrize("kwargs, message", [
    ({"beta": 1.5}, "beta must be between 0 and 1"),
    ({"beta": float("nan")}, "beta must be between 0 and 1"),
])
def test_bad_beta(kwargs, message):
    with pytest.raises(FusionError, match=message):
        blend_residuals(residuals(1), residuals(2), **kwargs)


def test_bad_inputs_name_the_problem():
    with pytest.raises(FusionError, match="beta_text"):
        beta_map_from_mask(torch.ones(4, 4), 2.0, 0.0)
    with pytest.raises(FusionError, match="text mask must be"):
        beta_map_from_mask(torch.ones(1, 3, 4, 4), 1.0, 0.0)
    with pytest.raises(FusionError, match="different numbers of 'output'"):
        blend_residuals({"output": [torch.ones(1)]}, {"output": [torch.ones(1), torch.ones(1)]})
    with pytest.raises(FusionError, match="differ in shape"):
        blend_residuals({"output": [torch.ones(1, 1, 2, 2)]}, {"output": [torch.ones(1, 1, 4, 4)]})
