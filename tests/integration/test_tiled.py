"""Tiled ping-pong sampling in a real ComfyUI, with the tiny SD1.5 checkpoint and a TS-ControlNet.

- One tile covering the image gives exactly the Ping-Pong KSampler's latent.
- Two tiles with GlyphSR Tile Prompts: a UNet recorder shows each tile's text steps carried the
  embedding of that tile's own prompt (its words only), and a ControlNet recorder shows each call's
  hint was the crop of the hint image at that tile.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from comfy_client import Graph
from glyphsr_core.text.prompts import PromptTemplates
from glyphsr_core.tiling.prompts import build_tile_prompts
from glyphsr_core.tiling.grid import tile_grid
from glyphsr_core.tscontrolnet import TSBundle, write_bundle
from glyphsr_core.types import OcrResult, TextRegion, quad_from_box

WIDTH, HEIGHT = 192, 64  # two tiles of 128 px sharing 64 px
TILE, OVERLAP = 128, 64
CAPTION, SUFFIX = "a shop sign", "sharp letters"
WORDS = {"LEFTWORD": (0.05, 0.3, 0.25, 0.6), "RIGHTWORD": (0.75, 0.3, 0.95, 0.6)}
COMMON = dict(seed=5, steps=2, cfg=4.0, sampler_name="euler", scheduler="normal", denoise=1.0, text_cfg=4.0,
              schedule="alternate", switch_at=0.9, pattern="ST", cfg_start=0.0)


@pytest.fixture(scope="module")
def ts_bundle(comfy_server, tiny_controlnet, tmp_path_factory) -> str:
    scene = load_file(str(comfy_server.models_dir / "controlnet" / tiny_controlnet))
    g = torch.Generator().manual_seed(1)
    text = {k: (v + 0.2 * torch.randn(v.shape, generator=g).to(v.dtype)) if v.is_floating_point() else v.clone()
            for k, v in scene.items()}
    path = write_bundle(tmp_path_factory.mktemp("tiled") / "glyphsr_tiled_ts.safetensors",
                        TSBundle(scene, text, beta=0.5, base="sd15"))
    return comfy_server.install_model(path, "controlnet")


@pytest.fixture(scope="module")
def hint(comfy_server) -> np.ndarray:
    """A random hint image exactly the latent's size x 8 (ComfyUI then uses it unresized)."""
    pixels = (np.random.default_rng(7).random((HEIGHT, WIDTH, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(comfy_server.input_dir / "glyphsr_tiled_hint.png")
    return pixels


def _graph(server, tiny_sd15, ts_bundle, width=WIDTH, height=HEIGHT):
    g = Graph(server)
    ckpt = g.node("CheckpointLoaderSimple", ckpt_name=tiny_sd15)
    enc = {name: g.node("CLIPTextEncode", text=text, clip=ckpt.out(1))
           for name, text in (("scene_positive", CAPTION), ("negative", "blurry"),
                              ("text_positive", f'the text "LEFTWORD", "RIGHTWORD", {CAPTION}'))}
    image = g.node("LoadImage", image="glyphsr_tiled_hint.png")
    if (width, height) != (WIDTH, HEIGHT):
        image = g.node("ImageScale", image=image.out(0), upscale_method="nearest-exact", width=width, height=height,
                       crop="disabled")
    cnet = g.node("GlyphSR_TSControlNetLoader", control_net_name=ts_bundle, second_control_net="None", beta=-1.0)
    applied = g.node("GlyphSR_ApplyTSControlNet", scene_positive=enc["scene_positive"].out(0),
                     scene_negative=enc["negative"].out(0), text_positive=enc["text_positive"].out(0),
                     text_negative=enc["negative"].out(0), control_net=cnet.out(0), image=image.out(0),
                     beta_text=-1.0, beta_scene=0.0, strength=1.0, start_percent=0.0, end_percent=1.0)
    latent = g.node("EmptyLatentImage", width=width, height=height, batch_size=1)
    return g, ckpt, enc, applied, latent


def _conds(applied) -> dict:
    return {"scene_positive": applied.out(0), "scene_negative": applied.out(1), "text_positive": applied.out(2),
            "text_negative": applied.out(3)}


def test_one_tile_gives_exactly_the_untiled_latent(comfy_server, tiny_sd15, ts_bundle, hint, unique_prefix):
    g, ckpt, _enc, applied, latent = _graph(comfy_server, tiny_sd15, ts_bundle, width=64, height=64)
    args = dict(model=ckpt.out(0), latent_image=latent.out(0), **_conds(applied), **COMMON)
    untiled = g.node("GlyphSR_PingPongKSampler", **args)
    tiled = g.node("GlyphSR_TiledPingPongKSampler", tile_size=64, tile_overlap=32, tile_batch_size=1, **args)
    saves = {name: g.node("SaveLatent", samples=node.out(0), filename_prefix=f"{unique_prefix}_{name}")
             for name, node in (("untiled", untiled), ("tiled", tiled))}
    result = comfy_server.queue(g)
    got = {name: load_file(str(result.files(node.id, "latents")[0]))["latent_tensor"] for name, node in saves.items()}
    assert got["untiled"].shape == (1, 4, 8, 8) and torch.isfinite(got["untiled"]).all()
    assert torch.equal(got["tiled"], got["untiled"])


def _expected_prompts() -> list[str]:
    """The prompt each tile should get, built here from the same words and tile boxes."""
    grid = tile_grid(HEIGHT // 8, WIDTH // 8, TILE // 8, OVERLAP // 8, multiple=8)
    regions = tuple(TextRegion(word, 1.0, quad_from_box(box)) for word, box in WORDS.items())
    sets = build_tile_prompts(CAPTION, OcrResult(WIDTH, HEIGHT, regions), grid.boxes(),
                              templates=PromptTemplates(text_suffix=SUFFIX), escape_weights=True)
    return [s.text_positive for s in sets]


def test_each_tile_gets_its_own_words_and_its_hint_crop(comfy_server, tiny_sd15, ts_bundle, hint, unique_prefix,
                                                       tmp_path):
    prompts = _expected_prompts()
    assert len(prompts) == 2 and '"LEFTWORD"' in prompts[0] and '"RIGHTWORD"' in prompts[1]
    assert '"RIGHTWORD"' not in prompts[0] and '"LEFTWORD"' not in prompts[1]
    g, ckpt, enc, applied, latent = _graph(comfy_server, tiny_sd15, ts_bundle)
    lines = "\n".join(f"{w} @ {','.join(str(v) for v in box)}" for w, box in WORDS.items())
    text = g.node("GlyphSR_TextFromString", text=lines, width=WIDTH, height=HEIGHT)
    tile_prompts = g.node("GlyphSR_TilePrompts", clip=ckpt.out(1), latent=latent.out(0), caption=CAPTION,
                          tile_size=TILE, tile_overlap=OVERLAP, max_words=24, include_locations=True, min_inside=0.5,
                          text_suffix=SUFFIX, text=text.out(0))
    # references for the UNet recorder: the two tile prompts encoded on their own
    refs = [g.node("CLIPTextEncode", text=p, clip=ckpt.out(1)) for p in prompts]
    unet_log, hint_log = tmp_path / "unet.jsonl", tmp_path / "hints.jsonl"
    recorded = g.node("GlyphSRTest_RecordingModel", model=ckpt.out(0), scene_positive=enc["scene_positive"].out(0),
                      scene_negative=enc["negative"].out(0), text_positive=refs[0].out(0),
                      text_negative=refs[1].out(0), path=str(unet_log))
    conds = _conds(applied)
    conds["scene_positive"] = g.node("GlyphSRTest_RecordControlHints", conditioning=conds["scene_positive"],
                                     path=str(hint_log)).out(0)
    sampled = g.node("GlyphSR_TiledPingPongKSampler", model=recorded.out(0), latent_image=latent.out(0),
                     tile_size=TILE, tile_overlap=OVERLAP, tile_batch_size=1, tile_prompts=tile_prompts.out(0),
                     **conds, **COMMON)
    save = g.node("SaveLatent", samples=sampled.out(0), filename_prefix=unique_prefix)
    report = g.node("PreviewAny", source=tile_prompts.out(1))
    result = comfy_server.queue(g)
    out = load_file(str(result.files(save.id, "latents")[0]))["latent_tensor"]
    assert out.shape == (1, 4, HEIGHT // 8, WIDTH // 8) and torch.isfinite(out).all()
    assert report.id in result.executed_nodes()

    # words: step 0 (scene) runs tile 0 then tile 1 on the scene pair; step 1 (text) gives tile 0 its
    # own prompt (recorded as 'text_positive') and tile 1 its own ('text_negative' here)
    calls = [json.loads(line) for line in unet_log.read_text().splitlines()]
    cond_labels = [label for call in calls for kind, label in call["chunks"] if kind == 0]
    uncond_labels = {label for call in calls for kind, label in call["chunks"] if kind == 1}
    assert cond_labels == ["scene_positive", "scene_positive", "text_positive", "text_negative"], calls
    assert uncond_labels == {"scene_negative"}

    # hints: every ControlNet call (scene and text branch) ran on its tile's crop of the hint image
    image = hint.astype(np.float64) / 255.0
    crops = [image[:, x0 * 8:(x0 + TILE // 8) * 8].sum() for x0 in (0, (WIDTH - TILE) // 8)]
    records = [json.loads(line) for line in hint_log.read_text().splitlines()]
    assert records and {tuple(r["shape"][-2:]) for r in records} == {(HEIGHT, TILE)}
    per_call = []
    for record in records:
        sums = record["row_sums"]
        tile = int(np.argmin([abs(sums[0] - c) for c in crops]))
        assert all(abs(s - crops[tile]) <= 1e-3 * crops[tile] for s in sums), (record, crops)
        per_call.append(tile)
    # two steps x two tiles x (scene branch, text branch)
    assert per_call == [0, 0, 1, 1, 0, 0, 1, 1]
    assert abs(crops[0] - crops[1]) > 1.0  # the two crops are told apart
