"""Text Restore core: bicubic start, file format, tiling, scales, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from glyphsr_core.restore import RestoreInputError, RestorerFileError, load_restorer, restore, restore_pil, save_restorer
from glyphsr_core.restore.compact import CompactSR, init_as_bicubic, pillow_bicubic_taps
from glyphsr_core.restore.model_file import compact_shape
from glyphsr_core.tiling.context import plan_tiles, run_tiled
from glyphsr_core.tiling.grid import TilingError


def _pillow_float_resize(images: torch.Tensor, size: tuple[int, int], method=Image.Resampling.BICUBIC) -> torch.Tensor:
    """Pillow's resize per channel in float mode (no 8-bit rounding): the exact reference."""
    out = [[np.asarray(Image.fromarray(ch.numpy(), mode="F").resize((size[1], size[0]), method)) for ch in img]
           for img in images]
    return torch.from_numpy(np.array(out, dtype=np.float32))


@pytest.fixture(scope="module")
def bicubic_net() -> CompactSR:
    model = CompactSR(num_feat=64, num_conv=3, scale=4)
    init_as_bicubic(model, torch.Generator().manual_seed(0))
    return model.eval()


def _smooth_image(seed: int, height: int, width: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.interpolate(torch.rand(1, 3, height // 4 + 1, width // 4 + 1, generator=g),
                                           size=(height, width), mode="bilinear").clamp(0, 1)


def test_pillow_bicubic_taps_sum_to_one_per_phase():
    taps = pillow_bicubic_taps(4)
    assert taps.shape == (4, 5)
    assert np.allclose(taps.sum(axis=1), 1.0, atol=1e-6)
    assert np.allclose(taps[0], taps[3][::-1])  # mirror phases


def test_bicubic_init_reproduces_pillow_bicubic_away_from_borders(bicubic_net):
    lq = torch.rand(1, 3, 24, 30, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = bicubic_net(lq)
    reference = _pillow_float_resize(lq, (96, 120))
    interior = (slice(None), slice(None), slice(12, -12), slice(12, -12))
    assert (out[interior] - reference[interior]).abs().max() < 1e-4
    assert (out - reference).abs().max() > 1e-3  # borders: zero padding vs Pillow's edge handling


def test_bicubic_init_rejects_too_few_features():
    with pytest.raises(ValueError, match="num_feat >= 48"):
        init_as_bicubic(CompactSR(num_feat=32, num_conv=2))


def test_saved_file_round_trips_with_metadata(tmp_path, bicubic_net):
    path = save_restorer(bicubic_net, tmp_path / "r.safetensors", {"step": 7})
    loaded = load_restorer(path)
    assert (loaded.scale, loaded.architecture, loaded.metadata["step"]) == (4, "compact", 7)
    assert loaded.metadata["num_conv"] == 3
    x = torch.rand(1, 3, 16, 16)
    saved, original = loaded.model.net.state_dict(), bicubic_net.state_dict()
    assert saved.keys() == original.keys() and all(torch.equal(saved[k], original[k]) for k in saved)
    with torch.no_grad():  # channels-last weights: the same function up to float rounding
        assert torch.allclose(loaded.model.net(x), bicubic_net(x), atol=1e-6)


def test_compact_shape_reads_the_spandrel_layout(bicubic_net):
    state = bicubic_net.state_dict()
    assert compact_shape(state) == (3, 64, 3, 4)
    assert compact_shape({"weight": torch.zeros(3)}) is None


@pytest.mark.parametrize("content, expected", [
    (None, "not found"),
    (b"not a safetensors file at all", "not a readable safetensors"),
])
def test_missing_or_corrupt_file_is_named(tmp_path, content, expected):
    path = tmp_path / "broken.safetensors"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(RestorerFileError, match=expected) as info:
        load_restorer(path)
    if content is not None:
        assert "broken.safetensors" in str(info.value)


def test_pickle_files_are_refused(tmp_path):
    path = tmp_path / "model.pth"
    torch.save({"body.0.weight": torch.zeros(1)}, path)
    with pytest.raises(RestorerFileError, match="expected a .safetensors file"):
        load_restorer(path)


def test_a_file_that_is_no_sr_net_is_refused_with_a_sentence(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "controlnet.safetensors"
    save_file({"input_blocks.0.0.weight": torch.zeros(4, 4, 3, 3)}, str(path))
    with pytest.raises(RestorerFileError, match="controlnet.safetensors"):
        load_restorer(path)


def test_plan_tiles_cover_the_image_once():
    for height, width, tile, overlap in [(100, 37, 32, 8), (64, 64, 64, 16), (513, 300, 128, 32), (5, 7, 16, 0)]:
        coverage = np.zeros((height, width), dtype=int)
        for plan in plan_tiles(height, width, tile, overlap):
            ry0, ry1, rx0, rx1 = plan.read
            ky0, ky1, kx0, kx1 = plan.keep
            assert ry1 - ry0 <= tile and rx1 - rx0 <= tile
            assert ry0 <= ky0 < ky1 <= ry1 and rx0 <= kx0 < kx1 <= rx1
            coverage[ky0:ky1, kx0:kx1] += 1
        assert (coverage == 1).all()


@pytest.mark.parametrize("tile, overlap", [(8, 0), (64, 40)])
def test_plan_tiles_rejects_bad_settings(tile, overlap):
    with pytest.raises(TilingError, match="tile"):
        plan_tiles(100, 100, tile, overlap)


def test_tiled_equals_untiled_for_the_compact_net():
    model = CompactSR(num_feat=16, num_conv=4, scale=4).eval()  # receptive field 6 px <= margin 8 px
    torch.manual_seed(3)
    for p in model.parameters():
        p.data.normal_(0, 0.2)
    image = torch.rand(2, 3, 70, 53)
    ticks = []
    with torch.no_grad():
        whole = model(image).clamp(0, 1)
    tiled = run_tiled(model, image, 4, tile=40, context_margin=16, on_tile=lambda d, t: ticks.append((d, t)))
    assert torch.allclose(tiled, whole, atol=1e-5)
    assert ticks[-1][0] == ticks[-1][1] == len(plan_tiles(70, 53, 40, 16)) > 1


def test_cancel_stops_between_tiles_and_returns_nothing(bicubic_net):
    calls = []

    def cancel():
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_tiled(bicubic_net, torch.rand(1, 3, 64, 64), 4, tile=16, context_margin=0, check_cancel=cancel)
    assert len(calls) == 3


def test_x8_enlarges_with_bicubic_first_and_x2_reduces_with_box(bicubic_net):
    image = _smooth_image(4, 20, 24)
    x8 = restore(bicubic_net, 4, image, 8)
    border = bicubic_net.num_conv + 2  # the runner's replicated context at the image's borders
    with torch.no_grad():
        enlarged = torch.nn.functional.pad(_pillow_float_resize(image, (40, 48)).clamp(0, 1), (border,) * 4, mode="replicate")
        expected8 = bicubic_net(enlarged).clamp(0, 1)[..., 4 * border:-4 * border, 4 * border:-4 * border]
    assert x8.shape == (1, 3, 160, 192) and torch.allclose(x8, expected8, atol=1e-5)
    x2 = restore(bicubic_net, 4, image, 2)
    expected2 = _pillow_float_resize(restore(bicubic_net, 4, image, 4), (40, 48), Image.Resampling.BOX)
    assert x2.shape == (1, 3, 40, 48) and torch.allclose(x2, expected2.clamp(0, 1), atol=1e-5)


@pytest.mark.parametrize("shape, scale, message", [
    ((1, 3, 1, 40), 4, "at least 2 px"),
    ((1, 3, 4, 20000), 8, "wider than"),
    ((1, 3, 8, 8), 3, "scale must be one of"),
])
def test_bad_sizes_and_scales_fail_before_any_work(bicubic_net, shape, scale, message):
    with pytest.raises(RestoreInputError, match=message):
        restore(bicubic_net, 4, torch.zeros(shape), scale)


def test_restore_pil_keeps_alpha_and_size(bicubic_net):
    rgba = Image.new("RGBA", (10, 6), (200, 30, 30, 128))
    out = restore_pil(bicubic_net, 4, rgba, 4)
    assert out.mode == "RGBA" and out.size == (40, 24)
    assert np.asarray(out)[..., 3].min() == 128


def test_spandrel_detects_the_file_and_computes_the_same(tmp_path, bicubic_net):
    """ComfyUI's core Load Upscale Model uses spandrel: it must read our file as the same network."""
    if subprocess.run([sys.executable, "-c", "import importlib.util,sys; sys.exit(importlib.util.find_spec('spandrel') is None)"]).returncode:
        pytest.skip("spandrel is not installed")
    path = save_restorer(bicubic_net, tmp_path / "r.safetensors")
    x = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(5))
    torch.save(x, tmp_path / "x.pt")
    script = textwrap.dedent(f"""
        import json, sys, types, torch
        try:
            import torchvision  # noqa: F401
        except Exception:  # spandrel's registry imports torchvision for other architectures only
            import importlib.abc, importlib.machinery

            class Placeholder(types.ModuleType):
                def __getattr__(self, name):
                    if name.startswith("__"):
                        raise AttributeError(name)
                    return Placeholder(self.__name__ + "." + name)

                def __call__(self, *args, **kwargs):
                    return Placeholder(self.__name__ + "()")

            class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
                def find_spec(self, name, path, target=None):
                    if name == "torchvision" or name.startswith("torchvision."):
                        return importlib.machinery.ModuleSpec(name, self, is_package=True)

                def create_module(self, spec):
                    return Placeholder(spec.name)

                def exec_module(self, module):
                    module.__path__ = []

            sys.meta_path.insert(0, Finder())
        from spandrel import ModelLoader
        d = ModelLoader().load_from_file({str(path)!r})
        y = d.model.eval()(torch.load({str(tmp_path / 'x.pt')!r}))
        torch.save(y, {str(tmp_path / 'y.pt')!r})
        print(json.dumps({{"arch": d.architecture.name, "scale": d.scale, "purpose": d.purpose}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    info = json.loads(done.stdout.strip().splitlines()[-1])
    assert info == {"arch": "RealESRGAN Compact", "scale": 4, "purpose": "SR"}
    with torch.no_grad():
        assert torch.allclose(torch.load(tmp_path / "y.pt"), bicubic_net(x), atol=1e-6)


def test_an_upscaler_file_runs_as_it_is(tmp_path):
    """`upscale --upscaler` with a compact file (realesr-animevideov3 is one): the net's own output, as
    ComfyUI's upscale node gives it away from the edges, not Text Restore's blend and grid removal."""
    from glyphsr_core.method import upscale_with_model
    from glyphsr_core.restore.run import border_context

    torch.manual_seed(0)
    net = CompactSR(num_feat=16, num_conv=2, scale=4).eval()
    path = save_restorer(net, tmp_path / "someone_elses_x4.safetensors")
    pixels = _smooth_image(3, 24, 32)
    image = Image.fromarray(np.round(pixels[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)[None]
    upscaled, loaded = upscale_with_model(path, image, 4)
    ours = torch.from_numpy(np.asarray(upscaled, dtype=np.float32) / 255).permute(2, 0, 1)[None]
    expected = run_tiled(net, x, 4, tile=512, context_margin=32, border=border_context(net, 32))
    treated = restore(loaded.model, 4, x, 4)
    assert (ours - expected).abs().max() <= 0.5 / 255 + 1e-4
    assert (treated - expected).abs().max() > 2 / 255  # Text Restore's treatment would have changed it
