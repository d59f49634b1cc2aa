"""HQ -> LQ degradations: sizes, scale arithmetic, determinism, recorded parameters, bad input."""

import json

import numpy as np
import pytest
from PIL import Image

from glyphsr_core.data.degrade import (MODES, DegradationError, apply_params, crop_to_multiple, degrade, filter2d,
                                       gaussian_kernel, lq_size, sample_params, sinc_kernel)


@pytest.fixture(scope="module")
def photo():
    rng = np.random.default_rng(5)
    base = np.kron(rng.integers(0, 256, size=(12, 16, 3)), np.ones((16, 16, 1)))  # blocks: edges + flat areas
    return Image.fromarray(np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8))  # 256 x 192


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scale", [2, 4, 8])
def test_lq_size_is_the_hq_size_divided_by_the_scale(photo, mode, scale):
    lq, params = degrade(photo, scale, seed=3, mode=mode)
    assert lq.mode == "RGB"
    assert lq.size == (256 // scale, 192 // scale)
    assert params["lq_size"] == list(lq.size) and params["scale"] == scale and params["mode"] == mode
    assert params["ops"][-1]["op"] in ("resize", "jpeg", "blur")


def test_sides_not_divisible_by_the_scale_are_cropped_at_the_bottom_right():
    hq = Image.new("RGB", (517, 301), (10, 20, 30))
    lq, params = degrade(hq, 4, seed=0, mode="bicubic")
    assert lq.size == (129, 75) == lq_size(517, 301, 4)
    assert params["hq_size"] == [517, 301] and params["crop"] == [516, 300]
    assert crop_to_multiple(hq, 8).size == (512, 296)
    # upscaling the LQ by the scale gives exactly the cropped HQ size
    assert (lq.width * 4, lq.height * 4) == tuple(params["crop"])


@pytest.mark.parametrize("mode", MODES)
def test_same_seed_same_pixels_other_seed_other_pixels(photo, mode):
    a, pa = degrade(photo, 4, seed=11, mode=mode)
    b, pb = degrade(photo, 4, seed=11, mode=mode)
    assert pa == pb
    assert np.array_equal(np.asarray(a), np.asarray(b))
    if mode != "bicubic":
        differs = any(not np.array_equal(np.asarray(a), np.asarray(degrade(photo, 4, seed=s, mode=mode)[0])) for s in (12, 13))
        assert differs


def test_recorded_parameters_replay_exactly_after_a_json_round_trip(photo):
    lq, params = degrade(photo, 8, seed=21, mode="realistic")
    replayed = apply_params(photo, json.loads(json.dumps(params)))
    assert np.array_equal(np.asarray(lq), np.asarray(replayed))


def test_bicubic_mode_is_exactly_a_bicubic_resize(photo):
    lq, params = degrade(photo, 4, seed=0, mode="bicubic")
    expected = photo.resize((64, 48), Image.Resampling.BICUBIC)
    assert np.abs(np.asarray(lq, dtype=int) - np.asarray(expected, dtype=int)).max() <= 1
    assert [op["op"] for op in params["ops"]] == ["resize"]


def test_paper_mode_records_the_authors_factor_and_blur_radius(photo):
    factors, radii = set(), []
    for seed in range(30):
        params = sample_params(photo.size, 4, seed, "paper")
        factors.add(params["ops"][0]["factor"])
        radii.append(params["ops"][2]["radius"])
    assert factors <= {4, 5, 6, 7, 8, 9} and len(factors) >= 4
    assert all(0.5 <= r <= 2.5 for r in radii)


def test_realistic_mode_records_every_stage_and_loses_detail(photo):
    seen = set()
    for seed in range(25):
        params = sample_params(photo.size, 4, seed, "realistic")
        seen.update(op["op"] for op in params["ops"])
        seen.update(op.get("kernel", "") for op in params["ops"])
    assert {"blur", "resize", "jpeg", "gaussian_noise", "poisson_noise", "iso", "aniso", "sinc"} <= seen
    realistic, _ = degrade(photo, 4, seed=1)
    plain, _ = degrade(photo, 4, seed=1, mode="bicubic")
    assert not np.array_equal(np.asarray(realistic), np.asarray(plain))


def test_kernels_are_normalised_and_blur_keeps_flat_images_flat():
    for kernel in (gaussian_kernel(21, 3.0, 0.8, 0.7), sinc_kernel(13, 1.2)):
        assert kernel.shape in ((21, 21), (13, 13)) and abs(kernel.sum() - 1.0) < 1e-6
    flat = np.full((40, 30, 3), 0.4, dtype=np.float32)
    assert np.allclose(filter2d(flat, gaussian_kernel(9, 2.0, 2.0, 0.0)), 0.4, atol=1e-5)
    impulse = np.zeros((31, 31, 1), dtype=np.float32)
    impulse[15, 15, 0] = 1.0
    kernel = gaussian_kernel(7, 1.0, 2.0, 0.3)
    assert np.allclose(filter2d(impulse, kernel)[12:19, 12:19, 0], kernel, atol=1e-5)


@pytest.mark.parametrize("bad", [0, 3.5, "4", True, 17])
def test_bad_scale_is_refused(photo, bad):
    with pytest.raises(DegradationError, match="scale"):
        degrade(photo, bad, seed=0)


def test_bad_mode_and_tiny_image_are_refused(photo):
    with pytest.raises(DegradationError, match="realistic, bicubic, paper"):
        degrade(photo, 4, seed=0, mode="jpeg-only")
    with pytest.raises(DegradationError, match="too small"):
        degrade(Image.new("RGB", (6, 40)), 8, seed=0)
    params = sample_params((64, 64), 4, 0, "bicubic")
    with pytest.raises(DegradationError, match="drawn for"):
        apply_params(Image.new("RGB", (32, 32)), params)
