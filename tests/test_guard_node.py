"""GlyphSR Text Guard node against the ComfyUI stand-in: composite only, re-sampling, batches, Cancel."""

from __future__ import annotations

import re

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import comfy.model_management as mm
from glyphsr_core.text.fidelity import compare_words
from glyphsr_core.guard import ocr_reader
from textimages import render_words

SIZE = (320, 160)


def comfy_image(lines, **kwargs) -> torch.Tensor:
    image, _ = render_words(lines, size=SIZE, font_size=30, **kwargs)
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)[None]


def noise_like(image: torch.Tensor, seed: int) -> torch.Tensor:
    return torch.rand(image.shape, generator=torch.Generator().manual_seed(seed)) * 0.6 + 0.2


class ToyModel:
    """Denoiser that ignores its conds: what a random-weight model gives (no letters)."""

    def predict(self, x, timestep, conds):
        return x * 0.3


class ToyPatcher:
    def __init__(self):
        self.model = ToyModel()
        self.model_options = {"transformer_options": {}}
        self.load_device = torch.device("cpu")

    def get_model_object(self, name):
        if name == "model_sampling":
            return SimpleNamespace(sigma_min=0.03, sigma_max=14.6)
        raise KeyError(name)


class ToyVAE:
    """x8 down / up, like a latent VAE's shapes: encode [B,H,W,3] -> [B,4,H/8,W/8], decode back."""

    downscale_ratio = 8

    def __init__(self):
        self.encoded: list[tuple] = []

    def encode(self, pixels):
        self.encoded.append(tuple(pixels.shape))
        assert pixels.shape[1] % 8 == 0 and pixels.shape[2] % 8 == 0
        latent = F.avg_pool2d(pixels.movedim(-1, 1), 8)
        return torch.cat([latent, latent[:, :1]], dim=1)

    def decode(self, samples):
        return F.interpolate(samples[:, :3], scale_factor=8, mode="nearest").clamp(0, 1).movedim(1, -1)


def cond(value: float):
    return [[torch.full((1, 77, 8), value), {"pooled_output": None}]]


@pytest.fixture(scope="module")
def words():
    clean = comfy_image([["OPEN", "DAILY"], ["FRESH"]])
    reader = ocr_reader()
    guidance = reader(clean[0].movedim(-1, 0))
    assert len(guidance.regions) == 3
    return clean, guidance, reader


@pytest.fixture
def node(pack):
    mm.interrupt_current_processing(False)
    return pack.nodes.text_guard.TextGuard()


def f1(reader, image, guidance):
    return compare_words(guidance, reader(image.movedim(-1, 0))).counts.f1


def test_registered_with_display_name(pack):
    assert pack.NODE_CLASS_MAPPINGS["GlyphSR_TextGuard"] is pack.nodes.text_guard.TextGuard
    assert pack.NODE_DISPLAY_NAME_MAPPINGS["GlyphSR_TextGuard"] == "GlyphSR Text Guard"


def test_without_model_it_composites_the_fallback_and_reports(node, words):
    import comfy.utils

    clean, guidance, reader = words
    output = noise_like(clean, 1)
    image, report, mask = node.guard(output, clean, [guidance], rounds=2, min_confidence=0.5, dilation=6)
    assert image.shape == output.shape and mask.shape == output.shape[:3]
    assert f1(reader, image[0], guidance) == 1.0
    assert torch.equal(image[0][mask[0] == 0], output[0][mask[0] == 0])
    assert report.startswith("word F1 0.000 -> 1.000") and report.count("composited") == 3
    bar = comfy.utils.created_bars[-1]
    assert bar.current == bar.total == 11  # read + up to two reads per rung (filled at the end: not all were needed)
    assert "rounds=2 has no effect: re-sampling needs model" in report  # said, not silently ignored


def test_a_right_result_passes_through_bit_identical(node, words):
    clean, guidance, _ = words
    image, report, mask = node.guard(clean, noise_like(clean, 2), [guidance], rounds=2, min_confidence=0.5,
                                     dilation=6, model=ToyPatcher(), vae=ToyVAE(), text_positive=cond(1.0),
                                     text_negative=cond(2.0))
    assert torch.equal(image, clean) and mask.max() == 0 and "0 pixel(s) changed" in report


def test_resampling_rounds_then_composite_over_a_batch(node, words):
    import comfy.samplers

    clean, guidance, reader = words
    batch = torch.cat([noise_like(clean, 3), clean])
    vae = ToyVAE()
    comfy.samplers.sampling_calls.clear()
    image, report, mask = node.guard(batch, clean, [guidance], rounds=2, min_confidence=0.5, dilation=6,
                                     model=ToyPatcher(), vae=vae, text_positive=cond(1.0), text_negative=cond(2.0),
                                     seed=5, steps=3, cfg=4.0, sampler_name="euler", scheduler="simple", denoise=0.5)
    # item 0: two rounds (text CFG 4 x 1.25, then x 1.5; 3 steps each), then the fallback; item 1 untouched
    assert [c["cond_scale"] for c in comfy.samplers.sampling_calls] == [5.0] * 3 + [6.0] * 3
    assert len(vae.encoded) == 2
    assert f1(reader, image[0], guidance) == 1.0 and torch.equal(image[1], clean[0])
    assert mask[1].max() == 0 and mask[0].max() == 1.0
    assert "image 1 of 2" in report and re.search(r"composited \([a-z, .0-9]+\) after 2 round\(s\)", report)


def test_partial_model_inputs_name_what_is_missing(node, words):
    clean, guidance, _ = words
    with pytest.raises(ValueError, match="vae, text_negative not connected"):
        node.guard(clean, clean, [guidance], rounds=1, min_confidence=0.5, dilation=4, model=ToyPatcher(),
                   text_positive=cond(1.0))
    with pytest.raises(ValueError, match="'text' must be a GLYPHSR_TEXT"):
        node.guard(clean, clean, [], rounds=1, min_confidence=0.5, dilation=4)
    with pytest.raises(ValueError, match="'fallback' holds 2 items but 'image' holds 1"):
        node.guard(clean, torch.cat([clean, clean]), [guidance], rounds=0, min_confidence=0.5, dilation=4)


def test_cancel_after_the_first_ocr_pass_stops_the_guard(node, words, monkeypatch):
    import comfy.samplers
    import comfy.utils

    clean, guidance, _ = words
    updates = []

    def hook(value, total, preview, node_id=None):
        updates.append(value)
        mm.interrupt_current_processing(True)  # the user presses Cancel while the output is read

    monkeypatch.setattr(comfy.utils, "PROGRESS_BAR_HOOK", hook)
    comfy.samplers.sampling_calls.clear()
    with pytest.raises(mm.InterruptProcessingException):
        node.guard(noise_like(clean, 4), clean, [guidance], rounds=2, min_confidence=0.5, dilation=4,
                   model=ToyPatcher(), vae=ToyVAE(), text_positive=cond(1.0), text_negative=cond(2.0))
    assert updates == [1] and comfy.samplers.sampling_calls == []  # no re-sampling started
    assert not mm.processing_interrupted()
