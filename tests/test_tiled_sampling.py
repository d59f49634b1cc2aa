"""Tiled ping-pong sampling nodes against the ComfyUI stand-in (tests/comfy_standin).

The toy denoiser runs the conds' ControlNet (the stand-in ControlNet is a conv over the hint, so a
tile's residual depends on the hint pixels it is given and is cut off at the tile's border like a
real one) and adds a term from the whole input it is shown (its mean), so a tile "sees" only its
tile: cutting without blending leaves a visible step at tile borders, as a real UNet would.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import comfy.controlnet
from glyphsr_core.sampling.fusion import beta_map_from_mask
from glyphsr_core.tiling.tensors import repeat_rows
from glyphsr_core.tiling.grid import seam_report, tile_grid
from glyphsr_core.types import OcrResult, TextRegion, quad_from_box

SCENE_POS, SCENE_NEG, TEXT_POS, TEXT_NEG = 1.0, 2.0, 3.0, 4.0


def cond(value: float, control=None):
    options = {"pooled_output": None}
    if control is not None:
        options["control"] = control
    return [[torch.full((1, 77, 8), value), options]]


class ToyModel:
    """Denoiser stand-in that records, per call, each row's prompt id and the hint its ControlNet saw."""

    def __init__(self, context_weight: float = 0.3):
        self.context_weight = context_weight
        self.calls: list[dict] = []

    def predict(self, x, timestep, conds):
        c = conds[0]
        ids = repeat_rows(c["cross_attn"][:, 0, 0], x.shape[0])
        out = x * 0.5 + ids.view(-1, 1, 1, 1) * 0.01
        # what a tile sees of its surroundings: only itself (a real UNet's receptive field, shrunk to a mean)
        out = out + self.context_weight * x.mean(dim=(-2, -1), keepdim=True)
        record = {"ids": ids.tolist(), "shape": tuple(x.shape), "hints": None}
        control = c.get("control")
        if control is not None:
            residual = control.get_control(x, timestep, {"c_crossattn": c["cross_attn"]}, 1, {})
            out = out + 0.05 * residual["output"][0]
            record["control"] = control
        self.calls.append(record)
        return out


class ToyPatcher:
    def __init__(self, model=None):
        self.model = model or ToyModel()
        self.model_options = {"transformer_options": {}}
        self.load_device = torch.device("cpu")

    def get_model_object(self, name):
        if name == "latent_format":
            return SimpleNamespace(latent_channels=4)
        if name == "model_sampling":
            return SimpleNamespace(sigma_min=0.03, sigma_max=14.6)
        raise KeyError(name)


def toy_controlnet(seed: int, hint_channels: int = 3):
    g = torch.Generator().manual_seed(seed)
    return comfy.controlnet.load_controlnet_state_dict(
        {"input_hint_block.0.weight": torch.randn(4, hint_channels, 3, 3, generator=g) * 0.3})


def smooth_image(height: int, width: int) -> torch.Tensor:
    """[1, 3, H, W] smooth colour gradients in 0..1."""
    y = torch.linspace(0, 1, height)[:, None]
    x = torch.linspace(0, 1, width)[None, :]
    return torch.stack([x.expand(height, width), y.expand(height, width), (x * y).expand(height, width)])[None]


def ts_control(pp_pack, hint, glyph, mask):
    """A TS-ControlNet (scene: 3-channel conv, text: 3 + glyph channel) with a mask beta map."""
    ts = pp_pack.nodes.ts_control_base.TSControlNet(toy_controlnet(1), toy_controlnet(2, hint_channels=4), beta=0.5)
    ts = ts.with_text_inputs(0.5, beta_map=beta_map_from_mask(mask, 1.0, 0.0), glyph=glyph)
    return ts.set_cond_hint(hint)


@pytest.fixture
def tiled(pack):
    return pack.nodes.tiled_pingpong


@pytest.fixture
def pp(pack):
    return pack.nodes.pingpong


def controlled_conds(pack, height, width, text_control=True, smooth=False):
    """The four conds with one TS-ControlNet: a gradient hint, a glyph map and a text-mask beta map.

    `smooth` makes the glyph map and the mask smooth too (the result of a smooth latent is then
    smooth, and any step in it is a seam); otherwise they are a random pattern and a hard-edged box.
    """
    hint = smooth_image(height, width)
    if smooth:
        y = torch.linspace(0, 1, height)[:, None]
        x = torch.linspace(0, 1, width)[None, :]
        glyph = (0.5 + 0.5 * torch.sin(6 * x) * torch.cos(4 * y))[None, None]
        mask = torch.exp(-((x - 0.6) ** 2 + (y - 0.4) ** 2) / 0.05)[None]
    else:
        glyph = (torch.rand(1, 1, height, width, generator=torch.Generator().manual_seed(5)) > 0.5).float()
        mask = torch.zeros(1, height, width)
        mask[:, height // 4: height // 2, width // 3:] = 1.0
    control = ts_control(pack, hint, glyph, mask)
    return {"scene_positive": cond(SCENE_POS, control), "scene_negative": cond(SCENE_NEG, control),
            "text_positive": cond(TEXT_POS, control if text_control else None),
            "text_negative": cond(TEXT_NEG, control if text_control else None)}


COMMON = dict(seed=3, steps=4, cfg=5.0, sampler_name="euler", scheduler="simple", denoise=1.0, text_cfg=6.0,
              schedule="alternate", switch_at=0.9, pattern="ST")


def run_untiled(pp, patcher, conds, latent, **kw):
    args = {**COMMON, **kw}
    return pp.PingPongKSampler().sample(
        patcher, args["seed"], args["steps"], args["cfg"], args["sampler_name"], args["scheduler"],
        conds["scene_positive"], conds["scene_negative"], latent, args["denoise"], args["text_cfg"], args["schedule"],
        args["switch_at"], args["pattern"], text_positive=conds["text_positive"],
        text_negative=conds["text_negative"], cfg_start=0.0)[0]["samples"]


def run_tiled(tiled, patcher, conds, latent, tile_size, tile_overlap, tile_batch_size=1, tile_prompts=None, **kw):
    args = {**COMMON, **kw}
    return tiled.TiledPingPongKSampler().sample(
        patcher, args["seed"], args["steps"], args["cfg"], args["sampler_name"], args["scheduler"],
        conds["scene_positive"], conds["scene_negative"], latent, args["denoise"], args["text_cfg"], args["schedule"],
        args["switch_at"], args["pattern"], tile_size, tile_overlap, tile_batch_size,
        text_positive=conds["text_positive"], text_negative=conds["text_negative"], cfg_start=0.0,
        tile_prompts=tile_prompts)[0]["samples"]


# ------------------------------------------------------------------ one tile == untiled

@pytest.mark.parametrize("tile_size", [128, 512])  # exactly the image, and larger than it
@pytest.mark.parametrize("sampler_name", ["euler", "heun"])
def test_one_tile_gives_exactly_the_untiled_result(pack, pp, tiled, tile_size, sampler_name):
    conds = controlled_conds(pack, 128, 128)
    latent = {"samples": torch.zeros(2, 4, 16, 16)}
    untiled_model, tiled_model = ToyModel(), ToyModel()
    expected = run_untiled(pp, ToyPatcher(untiled_model), conds, latent, sampler_name=sampler_name)
    got = run_tiled(tiled, ToyPatcher(tiled_model), conds, latent, tile_size, 64, sampler_name=sampler_name)
    assert torch.equal(got, expected)
    assert [c["ids"] for c in tiled_model.calls] == [c["ids"] for c in untiled_model.calls]
    assert {c["shape"] for c in tiled_model.calls} == {(2, 4, 16, 16)}


def test_pointwise_model_tiled_equals_untiled_up_to_rounding(pp, tiled):
    """With no context term and no ControlNet every pixel's prediction is its own: blending must reproduce it."""
    latent = {"samples": smooth_image(40, 40)[:, :1].repeat(1, 4, 1, 1)}
    conds = {k: cond(v) for k, v in (("scene_positive", 1.0), ("scene_negative", 2.0), ("text_positive", 3.0),
                                     ("text_negative", 4.0))}
    expected = run_untiled(pp, ToyPatcher(ToyModel(0.0)), conds, latent, denoise=0.6)
    model = ToyModel(0.0)
    got = run_tiled(tiled, ToyPatcher(model), conds, latent, 192, 64, tile_batch_size=3, denoise=0.6)
    assert {c["shape"] for c in model.calls} == {(3, 4, 24, 24), (1, 4, 24, 24)}  # 2x2 tiles of 24 px: 3, then 1
    assert torch.allclose(got, expected, atol=1e-5) and not torch.equal(got, torch.zeros_like(got))


# ------------------------------------------------------------------ seams

def rendered_text_image(height: int, width: int) -> torch.Tensor:
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("L", (width, height), 235)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=height // 5)
    draw.text((width // 10, height // 3), "OPEN 24/7", fill=20, font=font)
    return torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).float().view(1, 1, height, width) / 255.0


def seam_run(pack, tiled, image: torch.Tensor, overlap_px: int) -> tuple[dict, dict]:
    """Sample `image` (as a 4-channel latent) with 2x2 tiles and untiled, with no added noise.

    Without noise both results are deterministic functions of the input, so their difference is
    exactly what tiling changed (each tile's own context, the ControlNet's padding at the tile
    border). Returns the seam reports of the tiled result and of that difference.
    """
    import comfy.samplers

    height, width = image.shape[-2:]
    latent = image[:, :1].repeat(1, 4, 1, 1)
    conds = controlled_conds(pack, height * 8, width * 8, smooth=True)
    tile_px = (height // 2 + overlap_px // 16) * 8

    def sample(tile_size, overlap):
        (guider,) = tiled.TiledPingPongGuiderNode().get_guider(
            ToyPatcher(), conds["scene_positive"], conds["scene_negative"], 5.0, 6.0, "alternate", 0.9, "ST",
            tile_size, overlap, 1, text_positive=conds["text_positive"], text_negative=conds["text_negative"])
        with torch.no_grad():
            out = guider.sample(torch.zeros_like(latent), latent, comfy.samplers.sampler_object("euler"),
                                torch.tensor([1.0, 0.6, 0.3, 0.1, 0.0]), seed=1)
        return out, guider.grid

    out, grid = sample(tile_px, overlap_px)
    assert grid.shape == (2, 2)
    whole, whole_grid = sample(height * 8, 0)
    assert whole_grid.covers_whole()
    return seam_report(out, grid), seam_report(out - whole, grid)


#: the stated bound: with blending, the step that tiling adds across any line of a band two tiles
#: share (measured on tiled minus untiled) is at most 5 % of the step the same tiles leave when cut
#: without overlap, and at most 0.005 (latent values are ~0..1)
SEAM_SHARE = 0.05
SEAM_MAX = 0.005


@pytest.mark.parametrize("image", ["gradient", "text"])
def test_two_by_two_tiles_leave_no_step_along_borders(pack, tiled, image):
    picture = smooth_image(64, 64)[:, :1] if image == "gradient" else rendered_text_image(64, 64)
    _, hard = seam_run(pack, tiled, picture, 0)
    report, soft = seam_run(pack, tiled, picture, 128)
    assert hard["at_borders"] > 0.02  # the measure sees the seams of plain cutting
    assert soft["at_borders"] <= SEAM_SHARE * hard["at_borders"]
    assert soft["at_borders"] <= SEAM_MAX
    if image == "gradient":  # a smooth picture: the tiled result itself has no step at the borders either
        assert report["at_borders"] <= report["elsewhere"] + SEAM_MAX


# ------------------------------------------------------------------ per-tile words and hint crops

class FakeClip:
    """CLIP stand-in: each distinct prompt gets an id, written into its embedding."""

    def __init__(self):
        self.prompts: list[str] = []

    def tokenize(self, text):
        return text

    def encode_from_tokens_scheduled(self, tokens):
        if tokens not in self.prompts:
            self.prompts.append(tokens)
        return [[torch.full((1, 77, 8), 100.0 + self.prompts.index(tokens)), {"pooled_output": None}]]


def word(text, x0, y0, x1, y1):
    return TextRegion(text, 0.9, quad_from_box((x0, y0, x1, y1)))


def test_each_tile_is_prompted_with_its_own_words_and_sees_its_hint_crop(pack, tiled):
    height = width = 256
    conds = controlled_conds(pack, height, width)
    latent = {"samples": torch.zeros(1, 4, height // 8, width // 8)}
    ocr = OcrResult(width, height, (word("TOPLEFT", 0.05, 0.05, 0.3, 0.15), word("BOTTOMRIGHT", 0.7, 0.85, 0.95, 0.95),
                                    word("MIDDLE", 0.42, 0.42, 0.58, 0.58)))
    clip = FakeClip()
    tile_prompts, report = tiled.TilePromptsNode().build(clip, latent, "a poster", 192, 128, 24, True, 0.5,
                                                         "TEXT SUFFIX", text=[ocr])
    assert "2x2 tile(s)" in report and "tile 0,0 (x 0, y 0): TOPLEFT, MIDDLE" in report
    model = ToyModel()
    run_tiled(tiled, ToyPatcher(model), conds, latent, 192, 128, tile_batch_size=2, tile_prompts=tile_prompts)
    grid = tile_grid(32, 32, 24, 16, multiple=8)
    tiles = grid.tiles
    expected_words = {0: ["TOPLEFT", "MIDDLE"], 1: ["MIDDLE"], 2: ["MIDDLE"], 3: ["BOTTOMRIGHT", "MIDDLE"]}
    text_calls = [c for c in model.calls if c["ids"][0] >= 100]  # text positive evaluations
    assert len(text_calls) == 2 * 2  # 2 text steps x 2 tile batches
    for call_index, call in enumerate(text_calls):
        batch = call_index % 2
        for k, tile in enumerate(tiles[2 * batch: 2 * batch + 2]):
            prompt = clip.prompts[int(call["ids"][k]) - 100]
            named = [w for w in ("TOPLEFT", "BOTTOMRIGHT", "MIDDLE") if f'"{w}"' in prompt]
            assert named == expected_words[tile.index], (tile.index, prompt)
            assert prompt.endswith("a poster, TEXT SUFFIX")
            # the hint this tile's rows saw is the full hint's crop at the tile's place
            control = call["control"]
            ys, xs = tile.slices(8)
            full_hint = conds["scene_positive"][0][1]["control"].cond_hint_original
            assert torch.equal(control.scene.cond_hint[k], full_hint[0, :, ys, xs])
            glyph = conds["scene_positive"][0][1]["control"].glyph_hint
            assert torch.equal(control.text.cond_hint[k, 3], glyph[0, 0, ys, xs])
            assert torch.equal(control.beta_map.mask[k, 0],
                               conds["scene_positive"][0][1]["control"].beta_map.mask[0, 0, ys, xs])
    # the scene steps keep the one scene prompt for every tile
    assert {i for c in model.calls if c["ids"][0] < 100 for i in c["ids"]} <= {SCENE_POS, SCENE_NEG, TEXT_NEG}


def test_words_of_a_batch_of_images_reach_their_own_rows(pack, tiled):
    latent = {"samples": torch.zeros(2, 4, 32, 32)}
    first = OcrResult(256, 256, (word("ALPHA", 0.05, 0.05, 0.2, 0.1),))
    second = OcrResult(256, 256, (word("BETA", 0.05, 0.05, 0.2, 0.1),))
    clip = FakeClip()
    tile_prompts, _ = tiled.TilePromptsNode().build(clip, latent, "c", 192, 128, 24, True, 0.5, "S",
                                                    text=[first, second])
    conds = controlled_conds(pack, 256, 256)
    model = ToyModel()
    run_tiled(tiled, ToyPatcher(model), conds, latent, 192, 128, tile_batch_size=1, tile_prompts=tile_prompts,
              steps=2)
    call = next(c for c in model.calls if c["ids"][0] >= 100)  # tile 0, first text evaluation
    assert ['"ALPHA"' in clip.prompts[int(i) - 100] for i in call["ids"]] == [True, False]
    assert ['"BETA"' in clip.prompts[int(i) - 100] for i in call["ids"]] == [False, True]


# ------------------------------------------------------------------ progress, cancel, errors, interface

def test_one_progress_bar_over_steps_times_tile_batches(pack, tiled):
    import comfy.utils

    conds = controlled_conds(pack, 256, 256)
    run_tiled(tiled, ToyPatcher(), conds, {"samples": torch.zeros(1, 4, 32, 32)}, 192, 128, tile_batch_size=3,
              steps=3)
    bars = comfy.utils.created_bars
    assert len(bars) == 1 and bars[0].total == 3 * 2  # 4 tiles in batches of 3: 2 calls per step
    assert bars[0].updates == [1, 2, 2, 3, 4, 4, 5, 6, 6]  # per tile batch, then the step's preview update


def test_cancel_stops_between_tile_batches(pack, tiled, monkeypatch):
    import comfy.model_management as mm
    import comfy.utils

    def hook(value, total, preview, node_id=None):
        if value == 2:  # after the 2nd of 4 tile batches of the first step
            mm.interrupt_current_processing()

    monkeypatch.setattr(comfy.utils, "PROGRESS_BAR_HOOK", hook)
    model = ToyModel()
    conds = controlled_conds(pack, 256, 256)
    with pytest.raises(mm.InterruptProcessingException):
        run_tiled(tiled, ToyPatcher(model), conds, {"samples": torch.zeros(1, 4, 32, 32)}, 192, 128, steps=3)
    assert len(model.calls) == 2 * 2  # two tile batches (cond + uncond each), none after the cancel


def test_errors_name_the_input(pack, tiled):
    conds = controlled_conds(pack, 256, 256)
    latent = {"samples": torch.zeros(1, 4, 32, 32)}
    with pytest.raises(ValueError, match="tile_overlap must be >= 0 and smaller than tile_size"):
        run_tiled(tiled, ToyPatcher(), conds, latent, 192, 192)
    with pytest.raises(ValueError, match="tile_size must be at least 64"):
        run_tiled(tiled, ToyPatcher(), conds, latent, 32, 0)
    prompts, _ = tiled.TilePromptsNode().build(FakeClip(), latent, "c", 192, 64, 24, True, 0.5, "S")
    with pytest.raises(ValueError, match="tile_prompts were made for a 32x32 latent with tile 192 px and overlap "
                                         "64 px.*overlap 128 px"):
        run_tiled(tiled, ToyPatcher(), conds, latent, 192, 128, tile_prompts=prompts)
    two = OcrResult(256, 256, ())
    with pytest.raises(ValueError, match="'text' holds 2 OCR result\\(s\\) but 'latent' holds 3 image"):
        tiled.TilePromptsNode().build(FakeClip(), {"samples": torch.zeros(3, 4, 32, 32)}, "c", 192, 64, 24, True,
                                      0.5, "S", text=[two, two])
    area = dict(conds, scene_positive=[[torch.ones(1, 77, 8), {"area": (8, 8, 0, 0), "pooled_output": None}]])
    with pytest.raises(ValueError, match="scene_positive|'area' conditioning"):
        run_tiled(tiled, ToyPatcher(), area, latent, 192, 128)


def test_node_interfaces_and_registration(pack, tiled):
    ks = tiled.TiledPingPongKSampler.INPUT_TYPES()
    assert {"tile_size", "tile_overlap", "tile_batch_size"} <= set(ks["required"])
    assert "tile_prompts" in ks["optional"] and "text_positive" in ks["optional"]
    gd = tiled.TiledPingPongGuiderNode.INPUT_TYPES()
    assert {"tile_size", "tile_overlap", "tile_batch_size"} <= set(gd["required"])
    assert tiled.TilePromptsNode.RETURN_TYPES == ("GLYPHSR_TILE_PROMPTS", "STRING")
    assert {"GlyphSR_TiledPingPongKSampler", "GlyphSR_TiledPingPongGuider", "GlyphSR_TilePrompts"} <= set(
        pack.NODE_CLASS_MAPPINGS)


def test_guider_node_tiles_under_custom_sigmas(pack, tiled):
    import comfy.samplers

    conds = controlled_conds(pack, 256, 256)
    model = ToyModel()
    (guider,) = tiled.TiledPingPongGuiderNode().get_guider(
        ToyPatcher(model), conds["scene_positive"], conds["scene_negative"], 5.0, 6.0, "pattern", 0.5, "TTS", 192,
        128, 4, text_positive=conds["text_positive"], text_negative=conds["text_negative"])
    out = guider.sample(torch.randn(1, 4, 32, 32), torch.zeros(1, 4, 32, 32), comfy.samplers.sampler_object("euler"),
                        torch.tensor([9.0, 3.0, 1.0, 0.0]), seed=1)
    assert out.shape == (1, 4, 32, 32)
    assert [c["shape"][0] for c in model.calls] == [4] * 6  # 4 tiles in one call, cond and uncond, 3 steps
    assert [c["ids"][0] for c in model.calls[0::2]] == [TEXT_POS, TEXT_POS, SCENE_POS]
