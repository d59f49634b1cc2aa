"""GlyphSR Keep Words node against the ComfyUI stand-in: any upscaler's output, RGBA, grey, batches."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import comfy.model_management as mm
from test_guard_node import ToyPatcher, ToyVAE, cond, f1, noise_like, words  # noqa: F401 (words: a fixture)


@pytest.fixture
def node(pack):
    mm.interrupt_current_processing(False)
    return pack.nodes.keep_words.KeepWords()


def lq_of(image: torch.Tensor, factor: int = 2) -> torch.Tensor:
    return F.avg_pool2d(image.movedim(-1, 1), factor).movedim(1, -1)


def run(node, image, reference, text, **kwargs):
    settings = {"mode": "changed words", "min_confidence": 0.5, "dilation": 6, **kwargs}
    return node.keep(image, reference, text, **settings)


def test_registered_with_its_display_name_and_the_text_guard_shares_it(pack):
    assert pack.NODE_CLASS_MAPPINGS["GlyphSR_KeepWords"] is pack.nodes.keep_words.KeepWords
    assert pack.NODE_DISPLAY_NAME_MAPPINGS["GlyphSR_KeepWords"] == "GlyphSR Keep Words"
    inputs = pack.nodes.keep_words.KeepWords.INPUT_TYPES()
    assert list(inputs["required"]) == ["image", "reference", "text", "mode", "min_confidence", "dilation"]
    assert inputs["required"]["mode"][0] == ["changed words", "all text", "guidance words"]
    assert inputs["optional"]["rounds"][1]["default"] == 0


def test_lq_reference_puts_the_words_back_and_leaves_the_rest(node, words):
    clean, guidance, reader = words
    output = noise_like(clean, 1)  # an upscaler that lost every word
    image, report, mask = run(node, output, lq_of(clean), [guidance])
    assert f1(reader, image[0], guidance) == 1.0 and f1(reader, output[0], guidance) == 0.0
    assert torch.equal(image[0][mask[0] == 0], output[0][mask[0] == 0])
    assert "reference 160x80 enlarged x2 to 320x160 with bicubic" in report
    assert report.count("composited (") == 3


def test_rgba_keeps_its_alpha_and_grey_stays_grey(node, words):
    clean, guidance, reader = words
    alpha = torch.linspace(0, 1, clean.shape[2]).expand(*clean.shape[:3])[..., None]
    rgba = torch.cat([noise_like(clean, 2), alpha], dim=-1)
    image, _, mask = run(node, rgba, clean, [guidance])
    assert image.shape == rgba.shape and torch.equal(image[..., 3], rgba[..., 3])
    assert f1(reader, image[0, ..., :3], guidance) == 1.0

    grey = noise_like(clean, 3).mean(dim=-1, keepdim=True)
    image, _, mask = run(node, grey, clean.mean(dim=-1, keepdim=True), [guidance])
    assert image.shape == grey.shape and mask[0].max() > 0
    assert torch.equal(image[0][mask[0] == 0], grey[0][mask[0] == 0])
    assert f1(reader, image[0].repeat(1, 1, 3), guidance) == 1.0


def test_a_batch_with_one_reference_and_one_text(node, words):
    clean, guidance, reader = words
    batch = torch.cat([noise_like(clean, 4), clean])
    image, report, mask = run(node, batch, clean, [guidance])
    assert torch.equal(image[1], clean[0]) and mask[1].max() == 0
    assert "image 1 of 2" in report and "image 2 of 2" in report
    with pytest.raises(ValueError, match="'reference' holds 2 items but 'image' holds 3"):
        run(node, torch.cat([batch, clean]), batch, [guidance])


def test_rounds_without_a_model_are_said_and_half_connected_sampling_is_an_error(node, words):
    clean, guidance, _ = words
    _, report, _ = run(node, clean, clean, [guidance], rounds=2)
    assert "rounds=2 has no effect: re-sampling needs model, vae, text_positive and text_negative" in report
    with pytest.raises(ValueError, match="text_positive, text_negative not connected"):
        run(node, clean, clean, [guidance], rounds=1, model=ToyPatcher(), vae=ToyVAE())


def test_resampling_when_the_model_is_connected(node, words):
    import comfy.samplers

    clean, guidance, reader = words
    comfy.samplers.sampling_calls.clear()
    image, report, _ = run(node, noise_like(clean, 5), clean, [guidance], rounds=1, model=ToyPatcher(), vae=ToyVAE(),
                           text_positive=cond(1.0), text_negative=cond(2.0), steps=2, cfg=4.0, scheduler="simple")
    assert [c["cond_scale"] for c in comfy.samplers.sampling_calls] == [5.0] * 2
    assert f1(reader, image[0], guidance) == 1.0 and "after 1 round(s)" in report


def test_cancel_after_the_first_reading_stops_it(node, words, monkeypatch):
    import comfy.utils

    clean, guidance, _ = words
    updates = []

    def hook(value, total, preview, node_id=None):
        updates.append(value)
        mm.interrupt_current_processing(True)  # the user presses Cancel while the image is read

    monkeypatch.setattr(comfy.utils, "PROGRESS_BAR_HOOK", hook)
    with pytest.raises(mm.InterruptProcessingException):
        run(node, noise_like(clean, 6), clean, [guidance])
    assert updates == [1]  # stopped before any repair was read back
