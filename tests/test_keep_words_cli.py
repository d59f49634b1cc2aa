"""Headless Keep Words: `keep-words` for another tool's output, `upscale --upscaler FILE`, and flags
that cannot act being errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from glyphsr_core.cli import main
from glyphsr_core.text.fidelity import compare_words
from glyphsr_core.guard import ocr_reader, word_mask
from glyphsr_core.guard.repairs import LADDER
from glyphsr_core.restore import save_restorer
from glyphsr_core.restore.compact import CompactSR
from glyphsr_core.types import OcrResult
from test_guard import tensor
from textimages import render_words

LQ_SIZE = (200, 100)


@pytest.fixture(scope="module")
def lq(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kw")
    image, _ = render_words([["OPEN", "DAILY"]], size=LQ_SIZE, font_size=26, origin=(12, 30))
    image.save(folder / "lq.png")
    return folder / "lq.png"


def scrambled(image: Image.Image, seed: int = 0) -> Image.Image:
    """What a letter-inventing upscaler leaves of small words: x4, with the text band's 16 px blocks
    shuffled (the ink and the paper stay, the letters are gone)."""
    big = np.asarray(image.resize((image.width * 4, image.height * 4), Image.Resampling.BICUBIC)).copy()
    rng = np.random.default_rng(seed)
    band = big[96:256]
    blocks = [band[y:y + 16, x:x + 16].copy() for y in range(0, 160, 16) for x in range(0, band.shape[1], 16)]
    order = rng.permutation(len(blocks))
    per_row = band.shape[1] // 16
    for index, source in enumerate(order):
        y, x = divmod(index, per_row)
        band[y * 16:(y + 1) * 16, x * 16:(x + 1) * 16] = blocks[source]
    return Image.fromarray(big)


def outside_every_repair(report: dict, width: int, height: int, dilation: int) -> np.ndarray:
    boxes = [tuple(w["box"]) for w in report["words"] if w["box"]]
    widest = max(rung.context for rung in LADDER)
    return word_mask(boxes, width, height, dilation, context=widest).numpy() == 0


def f1_of(path, guidance: OcrResult) -> float:
    return compare_words(guidance, ocr_reader()(tensor(Image.open(path).convert("RGB")))).counts.f1


def test_keep_words_puts_the_lq_words_back_into_another_tools_output(lq, tmp_path, capsys):
    upscaled = scrambled(Image.open(lq).convert("RGB"))
    upscaled.save(tmp_path / "up.png")
    out = tmp_path / "kept.png"
    assert main(["keep-words", str(tmp_path / "up.png"), "--lq", str(lq), "-o", str(out), "--reference", "lq"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((tmp_path / "kept_report.json").read_text())
    guidance = OcrResult.from_dict(report["guidance"])
    assert [r.text for r in guidance.regions] == ["OPEN", "DAILY"]
    keep = report["keep_words"]
    assert keep["f1_before"] == 0.0 and keep["f1_after"] == 1.0 == f1_of(out, guidance)
    assert "reference 200x100 enlarged x4 to 800x400 with bicubic" in keep["notes"]
    assert '"open": missing -> composited (' in printed and "pixels changed:" in printed
    kept = np.asarray(Image.open(out))
    outside = outside_every_repair(keep, 800, 400, 8)
    assert np.array_equal(kept[outside], np.asarray(upscaled)[outside])  # exactly the upscaler's
    assert not list(tmp_path.glob(".*partial"))  # written atomically, nothing left behind


def test_keep_words_keeps_alpha_and_grey(lq, tmp_path):
    rgb = scrambled(Image.open(lq).convert("RGB"), seed=1)
    rgba = rgb.copy()
    rgba.putalpha(Image.linear_gradient("L").resize(rgb.size))
    rgba.save(tmp_path / "up_rgba.png")
    rgb.convert("L").save(tmp_path / "up_grey.png")
    for name, mode in (("up_rgba", "RGBA"), ("up_grey", "L")):
        out = tmp_path / f"{name}_kept.png"
        assert main(["keep-words", str(tmp_path / f"{name}.png"), "--lq", str(lq), "-o", str(out),
                     "--reference", "lq"]) == 0
        kept = Image.open(out)
        assert kept.mode == mode and kept.size == (800, 400)
        report = json.loads(out.with_name(f"{name}_kept_report.json").read_text())
        assert report["keep_words"]["f1_after"] == 1.0
    kept = np.asarray(Image.open(tmp_path / "up_rgba_kept.png"))
    assert np.array_equal(kept[..., 3], np.asarray(rgba)[..., 3])
    report = json.loads((tmp_path / "up_rgba_kept_report.json").read_text())
    outside = outside_every_repair(report["keep_words"], 800, 400, 8)
    assert np.array_equal(kept[outside], np.asarray(rgba)[outside])  # colour under any transparency: exact
    assert report["files"]["output"]["mode"] == "RGBA" and report["files"]["upscaled"]["alpha"] is True


def test_no_words_in_the_reference_pass_the_image_through(tmp_path, capsys):
    Image.new("RGB", (50, 40), (90, 120, 200)).save(tmp_path / "lq.png")
    upscaled = Image.new("RGB", (200, 160), (80, 130, 190))  # nothing the OCR can read either
    upscaled.save(tmp_path / "up.png")
    out = tmp_path / "out.png"
    assert main(["keep-words", str(tmp_path / "up.png"), "--lq", str(tmp_path / "lq.png"), "-o", str(out),
                 "--reference", "lq"]) == 0
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(upscaled))
    assert "no guidance words and none read in the image: it passes through untouched" in capsys.readouterr().out


def test_upscale_with_an_upscaler_file_keeps_text_restores_words(lq, tmp_path, capsys):
    torch.manual_seed(0)
    net = CompactSR(num_feat=16, num_conv=2, scale=4)
    with torch.no_grad():  # a net that sharpens letters into shapes that are not letters
        net.body[-1].weight.mul_(40.0)
    model = save_restorer(net, tmp_path / "letter_eater_x4.safetensors")
    out = tmp_path / "up.png"
    assert main(["upscale", str(lq), "-o", str(out), "--upscaler", str(model)]) == 0
    printed = capsys.readouterr().out
    report = json.loads((tmp_path / "up_report.json").read_text())
    assert report["upscaler"].endswith("letter_eater_x4.safetensors") and report["architecture"] == "compact"
    assert report["reference"].startswith("Text Restore (")
    keep = report["keep_words"]
    assert keep["f1_after"] == 1.0 and keep["f1_before"] < 1.0 and Image.open(out).size == (800, 400)
    assert "keep words: word F1" in printed and "composited (" in printed

    raw = tmp_path / "raw.png"
    assert main(["upscale", str(lq), "-o", str(raw), "--upscaler", str(model), "--guard", "-1"]) == 0
    assert "keep words: off (--guard -1)" in capsys.readouterr().out
    kept, plain = np.asarray(Image.open(out)), np.asarray(Image.open(raw))
    outside = outside_every_repair(keep, 800, 400, 8)
    assert np.array_equal(kept[outside], plain[outside]) and not np.array_equal(kept, plain)


@pytest.mark.parametrize("extra, message", [
    (["--guard", "1"], "--guard acts on a diffusion result (--base) or an --upscaler's output"),
    (["--keep-mode", "all-text"], "--keep-mode needs --base or --upscaler"),
    (["--upscaler", "x.safetensors", "--guard", "2"], "--guard 2 re-samples with the diffusion model"),
    (["--upscaler", "x.safetensors", "--base", "model"], "--upscaler and --base are two ways to upscale"),
    (["--upscaler", "{tmp}/RealESRGAN_x4plus.pth"], "expected a .safetensors file (other formats can run code"),
])
def test_flags_that_cannot_act_are_errors(lq, tmp_path, capsys, extra, message):
    (tmp_path / "RealESRGAN_x4plus.pth").write_bytes(b"pickle")
    extra = [value.format(tmp=tmp_path) for value in extra]
    assert main(["upscale", str(lq), "-o", str(tmp_path / "o.png"), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_guidance_words_mode_leaves_words_the_guidance_does_not_have(lq, tmp_path, capsys):
    """Marks the upscaler drew where the reference shows none (a photo's component print, a texture the
    OCR reads as letters): an LQ with OPEN only, an upscale that also shows DAILY. `changed words`
    repairs DAILY away as an invention; `guidance words` leaves it as the upscaler drew it."""
    open_only, _ = render_words([["OPEN"]], size=LQ_SIZE, font_size=26, origin=(12, 30))
    open_only.save(tmp_path / "lq.png")
    upscaled = Image.open(lq).convert("RGB").resize((800, 400), Image.Resampling.BICUBIC)
    upscaled.save(tmp_path / "up.png")
    outputs = {}
    for mode in ("changed-words", "guidance-words"):
        outputs[mode] = tmp_path / f"{mode}.png"
        assert main(["keep-words", str(tmp_path / "up.png"), "--lq", str(tmp_path / "lq.png"),
                     "-o", str(outputs[mode]), "--reference", "lq", "--mode", mode]) == 0
    printed = capsys.readouterr().out
    assert '"daily": invented -> composited (' in printed
    assert "1 invented word(s) left as drawn (mode 'guidance words'): \"daily\"" in printed
    assert np.array_equal(np.asarray(Image.open(outputs["guidance-words"])), np.asarray(upscaled))
    assert not np.array_equal(np.asarray(Image.open(outputs["changed-words"])), np.asarray(upscaled))
