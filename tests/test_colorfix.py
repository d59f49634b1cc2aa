import pytest
import torch
import torch.nn.functional as F

from glyphsr_core.sampling.colorfix import color_fix


def _smooth(seed: int, size=64, batch=1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(batch, 3, 4, 4, generator=g)
    return F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)


def _detail(seed: int, size=64, batch=1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, 3, size, size, generator=g) - 0.5) * 0.2


def test_wavelet_takes_colour_from_reference_and_detail_from_image():
    base = _smooth(2, batch=1) * 0.5 + 0.25
    shift = torch.tensor([0.15, -0.1, 0.05]).view(1, 3, 1, 1)
    image = (base + _detail(1) + shift).clamp(0, 1)
    fixed = color_fix(image, base, "wavelet")
    means = lambda x: x.mean(dim=(2, 3))  # noqa: E731
    assert (means(image) - means(base)).abs().max() > 0.09
    assert (means(fixed) - means(base)).abs().max() < 0.01
    high = lambda x: x - F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)  # noqa: E731
    assert torch.corrcoef(torch.stack([high(fixed).flatten(), high(image).flatten()]))[0, 1] > 0.9


def test_wavelet_with_identical_reference_is_identity():
    image = (_smooth(4) + _detail(5)).clamp(0, 1)
    assert torch.allclose(color_fix(image, image, "wavelet"), image, atol=1e-5)


def test_adain_matches_channel_statistics():
    image = (_smooth(6) * 0.3 + _detail(7)).clamp(0, 1)
    reference = _smooth(8) * 0.6 + 0.2
    fixed = color_fix(image, reference, "adain")
    assert torch.allclose(fixed.mean(dim=(2, 3)), reference.mean(dim=(2, 3)), atol=1e-3)
    assert torch.allclose(fixed.std(dim=(2, 3)), reference.std(dim=(2, 3)), atol=1e-3)


@pytest.mark.parametrize("method", ["wavelet", "adain"])
def test_small_reference_one_for_a_batch_moves_colour_toward_it(method):
    """One reference at a quarter of the size fixes a batch of three, each with its own colour cast."""
    g = torch.Generator().manual_seed(3)
    reference = F.interpolate(torch.rand(1, 3, 4, 4, generator=g) * 0.5 + 0.25, size=(10, 14), mode="bilinear",
                              align_corners=False)
    full = F.interpolate(reference, size=(40, 56), mode="bilinear", align_corners=False)
    casts = torch.tensor([[0.2, -0.15, 0.1], [-0.1, 0.1, 0.15], [0.05, 0.2, -0.2]]).view(3, 3, 1, 1)
    image = (full + casts + (torch.rand(3, 3, 40, 56, generator=g) - 0.5) * 0.1).clamp(0, 1)
    fixed = color_fix(image, reference, method)
    assert fixed.shape == image.shape and fixed.min() >= 0 and fixed.max() <= 1
    before = (image.mean(dim=(2, 3)) - reference.mean(dim=(2, 3))).abs()
    after = (fixed.mean(dim=(2, 3)) - reference.mean(dim=(2, 3))).abs()
    assert (before.max(dim=1).values > 0.14).all()  # every image had a cast
    assert after.max() < 0.002  # and every channel of every image now has the reference's colour


@pytest.mark.parametrize("method", ["wavelet", "adain"])
def test_one_pixel_images_take_the_reference_colour(method):
    image, reference = torch.tensor([0.9, 0.1, 0.5]).view(1, 3, 1, 1), torch.tensor([0.2, 0.6, 0.3]).view(1, 3, 1, 1)
    assert torch.allclose(color_fix(image, reference, method), reference, atol=1e-5)


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match="method"):
        color_fix(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), "magic")
    with pytest.raises(ValueError, match="'reference' batch of 2"):
        color_fix(torch.rand(3, 3, 8, 8), torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        color_fix(torch.rand(1, 4, 8, 8), torch.rand(1, 3, 8, 8))
