"""Text Restore in real ComfyUI: the bundled file is listed, runs, and ComfyUI's own loader agrees."""

from __future__ import annotations

import numpy as np
import torch
import pytest
from PIL import Image, ImageDraw, ImageFont

from comfy_client import REPO_ROOT, ComfyPromptError, Graph

from glyphsr_core.restore.run import detail_weight
from glyphsr_core.restore import load_restorer, restore

BUNDLED = "glyphsr_text_restore_x4.safetensors"


def _small_sign(path, size=(96, 48)):
    image = Image.new("RGB", size, (240, 236, 226))
    ImageDraw.Draw(image).text((6, 10), "OPEN 24", font=ImageFont.load_default(size=18), fill=(30, 30, 30))
    image.save(path)


def _options(spec: list) -> list:
    """A combo's choices in either /object_info form: [[...], {...}] or ["COMBO", {"options": [...]}]."""
    return spec[1]["options"] if spec[0] == "COMBO" else spec[0]


def test_bundled_restorer_is_listed_by_our_node_and_by_comfyui_upscale_loader(comfy_server):
    assert (REPO_ROOT / "models" / "upscale_models" / BUNDLED).is_file()
    ours = _options(comfy_server.object_info("GlyphSR_TextRestore")["input"]["required"]["model"])
    core = _options(comfy_server.object_info("UpscaleModelLoader")["input"]["required"]["model_name"])
    assert ours[0] == BUNDLED and BUNDLED in core


def test_node_matches_comfyui_upscale_image_using_model(comfy_server, unique_prefix):
    """Same file through 'Load Upscale Model' + 'Upscale Image (using Model)': the same pixels away from
    the image's edges. At the edges ComfyUI runs the net with its zero padding; our node gives the
    borders replicated context (the receptive field, 4 output px per input px), which removes the frame."""
    _small_sign(comfy_server.input_dir / "glyphsr_restore_in.png")
    g = Graph(comfy_server)
    image = g.node("LoadImage", image="glyphsr_restore_in.png")
    ours = g.node("GlyphSR_TextRestore", image=image.out(0), model=BUNDLED, scale="4", tile_size=512, tile_overlap=32)
    loader = g.node("UpscaleModelLoader", model_name=BUNDLED)
    core = g.node("ImageUpscaleWithModel", upscale_model=loader.out(0), image=image.out(0))
    save_ours = g.node("SaveImage", images=ours.out(0), filename_prefix=unique_prefix + "_ours")
    save_core = g.node("SaveImage", images=core.out(0), filename_prefix=unique_prefix + "_core")
    result = comfy_server.queue(g)
    with Image.open(result.files(save_ours.id)[0]) as a, Image.open(result.files(save_core.id)[0]) as b:
        assert a.size == b.size == (384, 192)
    loaded = load_restorer(REPO_ROOT / "models" / "upscale_models" / BUNDLED)
    edge = 4 * loaded.model.receptive_field
    # near the letters ComfyUI's node runs the same net (less its phase grid, which only our loader takes
    # out); over smooth areas ours is bicubic; everywhere ours is the core's `restore`
    with Image.open(comfy_server.input_dir / "glyphsr_restore_in.png") as lq:
        pixels = torch.from_numpy(np.asarray(lq.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)[None]
        bicubic = np.asarray(lq.convert("RGB").resize((384, 192), Image.Resampling.BICUBIC), dtype=np.int16)

    def as_pixels(images: torch.Tensor) -> np.ndarray:
        return np.round(images[0].permute(1, 2, 0).numpy() * 255).astype(np.int16)

    core_net, core_ours = as_pixels(restore(loaded.model.net, 4, pixels, 4)), as_pixels(restore(loaded.model, 4, pixels, 4))
    weight = torch.nn.functional.interpolate(detail_weight(pixels), size=(192, 384), mode="bilinear",
                                             align_corners=False)[0, 0].numpy()  # as the node blends
    inner = (slice(edge, -edge), slice(edge, -edge))
    net_part = (weight == 1)[inner]
    assert net_part.mean() > 0.2, "the sign should have detail around its letters"
    with Image.open(result.files(save_core.id)[0]) as b:
        comfy_net = np.asarray(b.convert("RGB"), dtype=np.int16)
    assert np.abs(comfy_net - core_net)[inner].max(axis=2)[net_part].max() <= 1
    ours_pixels = np.asarray(Image.open(result.files(save_ours.id)[0]).convert("RGB"), dtype=np.int16)
    assert np.abs(ours_pixels - core_ours).max() <= 1
    assert 0 < np.abs(ours_pixels - comfy_net)[inner].max(axis=2)[net_part].max() < 16  # the grid, a few levels
    smooth = (weight == 0)[inner]
    if smooth.any():
        assert np.abs(ours_pixels - bicubic)[inner].max(axis=2)[smooth].max() <= 1
    log = comfy_server.log_text()
    assert "Requested to load" in log and "PhaseEqualized" in log  # the bundled file runs de-gridded


def test_x8_and_tiles_run_in_comfyui(comfy_server, unique_prefix):
    _small_sign(comfy_server.input_dir / "glyphsr_restore_in.png")
    g = Graph(comfy_server)
    image = g.node("LoadImage", image="glyphsr_restore_in.png")
    whole = g.node("GlyphSR_TextRestore", image=image.out(0), model=BUNDLED, scale="8", tile_size=512, tile_overlap=32)
    tiled = g.node("GlyphSR_TextRestore", image=image.out(0), model=BUNDLED, scale="8", tile_size=64, tile_overlap=32)
    save_whole = g.node("SaveImage", images=whole.out(0), filename_prefix=unique_prefix + "_whole")
    save_tiled = g.node("SaveImage", images=tiled.out(0), filename_prefix=unique_prefix + "_tiled")
    result = comfy_server.queue(g)
    with Image.open(result.files(save_whole.id)[0]) as a, Image.open(result.files(save_tiled.id)[0]) as b:
        assert a.size == (768, 384)
        assert np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16)).max() <= 1


def test_a_missing_restorer_file_is_named_on_its_node(comfy_server):
    _small_sign(comfy_server.input_dir / "glyphsr_restore_in.png")
    g = Graph(comfy_server)
    image = g.node("LoadImage", image="glyphsr_restore_in.png")
    restore = g.node("GlyphSR_TextRestore", image=image.out(0), model="shared_by_a_friend.safetensors", scale="4",
                     tile_size=512, tile_overlap=32)
    g.node("PreviewImage", images=restore.out(0))
    with pytest.raises(ComfyPromptError) as err:
        comfy_server.queue(g, websocket=False)
    errors = err.value.payload.get("node_errors", {})
    assert restore.id in errors, err.value.payload
    message = str(errors[restore.id])
    assert "shared_by_a_friend.safetensors" in message and "upscale_models" in message
