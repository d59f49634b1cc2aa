"""Tiled sampling in the headless pipeline on tiny random diffusers models (CPU)."""

from __future__ import annotations

import logging

import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from glyphsr_core.diffusion.models import load_base, load_controlnet  # noqa: E402
from glyphsr_core.tiling.sampler import SampleTiling, auto_tiling  # noqa: E402
from glyphsr_core.diffusion.tiny import build_tiny_controlnet, write_tiny_models  # noqa: E402
from glyphsr_core.sampling.fusion import beta_map_from_mask  # noqa: E402
from glyphsr_core.diffusion.sampler import GlyphSRPipeline  # noqa: E402
from glyphsr_core.method import upscale  # noqa: E402
from glyphsr_core.sampling.pingpong import PingPong  # noqa: E402
from glyphsr_core.types import OcrResult, TextRegion, quad_from_box  # noqa: E402

PLAN = PingPong(schedule="alternate", cfg=4.0, text_cfg=5.0, cfg_start=0.0)


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    files = write_tiny_models(tmp_path_factory.mktemp("tiny_tiled"), "sd15")
    base = load_base(files["base"])
    scene = load_controlnet(files["scene_controlnet"], base.unet)
    return GlyphSRPipeline(base, scene, build_tiny_controlnet(base.unet, seed=99), beta=0.5)


def smooth_control(size: int = 128) -> torch.Tensor:
    y = torch.linspace(0, 1, size)[:, None]
    x = torch.linspace(0, 1, size)[None, :]
    return torch.stack([x.expand(size, size), y.expand(size, size), (0.5 + 0.5 * torch.sin(5 * x * y))])[None]


def run(pipe, tiling=None, tile_text=None, control=None, beta_map=None, steps=3):
    control = smooth_control() if control is None else control
    scene = pipe.encode("a shop front", "blurry")
    text = pipe.encode('the text "OPEN"', "garbled")
    return pipe.sample(control, scene, text, beta_map=beta_map, steps=steps, pingpong=PLAN,
                       generator=torch.Generator().manual_seed(2), output="latent", tiling=tiling,
                       tile_text=tile_text)


def test_one_tile_gives_exactly_the_untiled_latents(pipe):
    mask = torch.zeros(1, 128, 128)
    mask[:, 40:90, 20:100] = 1.0
    beta_map = beta_map_from_mask(mask, 1.0, 0.2)
    expected = run(pipe, beta_map=beta_map)
    for tile in (128, 512):
        got = run(pipe, SampleTiling(tile, 32), beta_map=beta_map)
        assert torch.equal(got, expected), tile


def test_each_tile_is_prompted_with_its_own_words(pipe, monkeypatch):
    words = OcrResult(128, 128, (TextRegion("LEFTSIGN", 0.9, quad_from_box((0.05, 0.1, 0.3, 0.2))),
                                 TextRegion("RIGHTSIGN", 0.9, quad_from_box((0.7, 0.8, 0.95, 0.9)))))
    seen = []
    original = pipe._noise_pred

    def recording(latents, t, cond, *args, **kwargs):
        seen.append((latents.shape[0], cond.positive.detach().clone()))
        return original(latents, t, cond, *args, **kwargs)

    monkeypatch.setattr(pipe, "_noise_pred", recording)
    from PIL import Image

    lq = Image.new("RGB", (32, 32), (120, 140, 160))
    result = upscale(pipe, lq, scale=4, text=words, caption="a street", steps=2, seed=1, color_fix="none",
                          sample_tile=96, sample_blend_overlap=64, sample_tile_batch=1)
    tiles = result.info["tiles"]
    assert [t["words"] for t in tiles] == [["LEFTSIGN"], [], [], ["RIGHTSIGN"]]
    # step 0 (scene) then step 1 (text): 4 tile calls each; the text calls carry each tile's own prompt
    assert len(seen) == 8 and all(rows == 1 for rows, _ in seen)
    expected = {0: 'the text "LEFTSIGN" at the top left, a street', 3: 'the text "RIGHTSIGN" at the bottom right, '
                                                                       'a street'}
    for index, prompt in expected.items():
        reference = pipe.encode(f"{prompt}, {_suffix()}", "x").positive
        assert torch.equal(seen[4 + index][1], reference), index
    assert not torch.equal(seen[4][1], seen[7][1])
    assert torch.equal(seen[0][1], seen[3][1])  # the scene prompt is the same for every tile


def _suffix() -> str:
    from glyphsr_core.text.prompts import DEFAULT_TEXT_SUFFIX

    return DEFAULT_TEXT_SUFFIX


def test_auto_tiling_above_twice_the_native_size_says_so(caplog):
    assert auto_tiling(1024, 768, 512) is None
    with caplog.at_level(logging.INFO):
        tiling = auto_tiling(2048, 1024, 512, blend_overlap=128, batch=2)
    assert tiling == SampleTiling(1024, 128, 2)
    assert "larger than 1024 px: sampling in tiles of 1024 px" in caplog.text
    assert "--sample-tile 0 turns this off" in caplog.text


def test_cli_flags_do_not_clash_with_text_restore_tiling():
    from glyphsr_core.cli import build_parser

    args = build_parser().parse_args(["upscale", "in.png", "-o", "o.png", "--tile", "256", "--sample-tile", "768",
                                      "--sample-tile-overlap", "96", "--sample-tile-batch", "2"])
    assert (args.tile, args.sample_tile, args.sample_tile_overlap, args.sample_tile_batch) == (256, 768, 96, 2)
    assert build_parser().parse_args(["upscale", "in.png", "-o", "o.png"]).sample_tile is None  # automatic
    with pytest.raises(SystemExit):
        build_parser().parse_args(["upscale", "in.png", "-o", "o.png", "--sample-tile", "32"])
    with pytest.raises(ValueError, match="overlap must be >= 0 and smaller than the tile"):
        SampleTiling(128, 128)
