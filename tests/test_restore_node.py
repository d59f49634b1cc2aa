"""GlyphSR Text Restore node against the ComfyUI stand-in: listing, loading, batches, alpha, Cancel."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from glyphsr_core.restore import BUNDLED_NAME, BUNDLED_PATH, save_restorer
from glyphsr_core.restore.compact import CompactSR, init_as_bicubic


@pytest.fixture()
def node(pack):
    return pack.nodes.text_restore.TextRestore()


@pytest.fixture()
def user_model(pack):
    """A bicubic-initialised restorer saved into the user's models/upscale_models."""
    import folder_paths

    model = CompactSR(num_feat=64, num_conv=2, scale=4)
    init_as_bicubic(model, torch.Generator().manual_seed(0))
    root = folder_paths.get_folder_paths("upscale_models")[0]
    os.makedirs(root, exist_ok=True)
    path = save_restorer(model, os.path.join(root, "user_bicubic_x4.safetensors"))
    yield "user_bicubic_x4.safetensors", model.eval()
    path.unlink()
    pack.nodes.text_restore._cache.clear()


def test_the_bundled_model_is_listed_first_and_its_folder_registered(pack, user_model):
    import folder_paths

    choices = pack.nodes.text_restore.TextRestore.INPUT_TYPES()["required"]["model"][0]
    assert choices[0] == BUNDLED_NAME and user_model[0] in choices
    assert str(BUNDLED_PATH.parent) in folder_paths.get_folder_paths("upscale_models")


def test_restores_a_batch_through_comfy_loading_with_progress_per_tile(node, user_model):
    import comfy.model_management as mm
    import comfy.utils as cu

    name, model = user_model
    images = torch.rand(2, 40, 48, 3, generator=torch.Generator().manual_seed(1))
    (out,) = node.restore(images, name, "4", tile_size=64, tile_overlap=16)
    assert out.shape == (2, 160, 192, 3)
    border = model.num_conv + 2  # edge-replicated context beyond the true borders, cropped after
    with torch.no_grad():
        padded = torch.nn.functional.pad(images.movedim(-1, 1), (border,) * 4, mode="replicate")
        expected = model(padded).clamp(0, 1)[..., 4 * border:-4 * border, 4 * border:-4 * border].movedim(1, -1)
    assert torch.allclose(out, expected, atol=1e-5)
    assert len(mm.load_calls) == 1 and mm.load_calls[0][0][0].model is not None
    bar = cu.created_bars[-1]
    assert bar.total == 2 and bar.updates == [1, 2]  # one tile per image at this size


def test_alpha_is_kept_and_grayscale_becomes_rgb(node, user_model):
    name, _ = user_model
    rgba = torch.rand(1, 12, 10, 4)
    (out,) = node.restore(rgba, name, "4", 512, 32)
    assert out.shape == (1, 48, 40, 4)
    assert abs(out[..., 3].mean().item() - rgba[..., 3].mean().item()) < 0.05
    gray = torch.rand(1, 12, 10, 1)
    (out,) = node.restore(gray, name, "2", 512, 32)
    assert out.shape == (1, 24, 20, 3)
    assert torch.allclose(out[..., 0], out[..., 1])


def test_cancel_stops_between_tiles(node, user_model):
    import comfy.model_management as mm

    name, _ = user_model
    mm.interrupt_current_processing(True)
    with pytest.raises(mm.InterruptProcessingException):
        node.restore(torch.rand(1, 64, 64, 3), name, "4", tile_size=64, tile_overlap=0)


def test_missing_model_names_the_folder(node):
    with pytest.raises(FileNotFoundError, match="upscale_models"):
        node.restore(torch.rand(1, 8, 8, 3), "nope.safetensors", "4", 512, 32)


def test_bad_scale_and_tiny_image_are_refused(node, user_model):
    name, _ = user_model
    with pytest.raises(ValueError, match="scale must be one of"):
        node.restore(torch.rand(1, 8, 8, 3), name, "3", 512, 32)
    with pytest.raises(ValueError, match="at least 2 px"):
        node.restore(torch.rand(1, 1, 8, 3), name, "4", 512, 32)


def test_validation_names_the_folders_searched_for_a_missing_file(pack, user_model):
    cls = pack.nodes.text_restore.TextRestore
    assert cls.VALIDATE_INPUTS(user_model[0]) is True
    message = cls.VALIDATE_INPUTS("from_a_friend.safetensors")
    assert "from_a_friend.safetensors" in message and "upscale_models" in message
