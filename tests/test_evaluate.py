"""`evaluate`: methods, skips that are counted, outputs from another tool, CLI errors; one real-OCR run."""

import json

import numpy as np
import pytest
from PIL import Image

from glyphsr_core.cli import main
from glyphsr_core.data.corpus import CorpusConfig, make_corpus
from glyphsr_core.data.corpus_fonts import FontChoice
from glyphsr_core.commands.evaluate import evaluate, format_table, polygon_mask
from glyphsr_core.types import OcrResult, TextRegion

from test_datasets import SVT_XML

TRUTH = {"14_03": ["LIVING", "ROOM"]}


class FakeOcr:
    """Reads the ground truth from sharp images and nothing from blurry ones (no model needed)."""

    def __init__(self, words):
        self.words = words
        self.calls = 0

    def __call__(self, image, *, min_confidence, ocr_scale):
        self.calls += 1
        sharp = np.abs(np.diff(np.asarray(image.convert("L"), dtype=float), axis=1)).max() > 100
        words = self.words if sharp else ["L1VING"]
        return OcrResult(image.width, image.height, tuple(TextRegion(w, 0.9) for w in words))


@pytest.fixture()
def svt(tmp_path):
    root = tmp_path / "svt"
    (root / "img").mkdir(parents=True)
    (root / "test.xml").write_text(SVT_XML)
    image = np.full((120, 160, 3), 200, dtype=np.uint8)
    image[30:50, 10:60:4] = 0  # sharp stripes where the words are
    Image.fromarray(image).save(root / "img/14_03.jpg", quality=95)
    Image.new("RGB", (160, 120)).save(root / "img/15_01.jpg")
    return root


def test_methods_are_scored_and_skips_are_counted(svt, tmp_path):
    outputs = tmp_path / "outs"
    outputs.mkdir()
    report = evaluate("svt", svt, 4, ["hq", "bicubic", f"dir:{outputs}"], ocr=FakeOcr(TRUTH["14_03"]))
    hq, bicubic = report["methods"]["hq"]["summary"], report["methods"]["bicubic"]["summary"]
    assert hq["f1"] == 1.0 and hq["cer"] == 0.0 and hq["images"] == 1
    assert bicubic["f1"] == 0.0 and bicubic["paper_precision"] == 0.0
    # "L1VING" is a near miss: one edit for LIVING, ROOM missing entirely
    assert bicubic["cer"] == pytest.approx((1 + 4) / 10)
    assert report["skipped"]["no labelled words"] == ["15_01"] and len(report["skipped"]["image file missing"]) == 1
    assert report["methods"][f"dir:{outputs}"]["skipped"] == {"no output image": ["14_03"]}
    assert report["images_evaluated"] == 1 and report["degradation"] == "bicubic"
    assert "bicubic" in format_table(report)


def test_outputs_of_another_tool_are_read_by_image_id_and_resized_when_needed(svt, tmp_path):
    outputs = tmp_path / "outs"
    outputs.mkdir()
    Image.open(svt / "img/14_03.jpg").resize((80, 60)).save(outputs / "14_03.png")
    report = evaluate("svt", svt, 4, [f"dir:{outputs}"], ocr=FakeOcr(TRUTH["14_03"]))
    data = report["methods"][f"dir:{outputs}"]
    assert data["resized_to_hq"] == ["14_03"] and data["summary"]["images"] == 1


def test_text_region_psnr_uses_the_word_polygons():
    mask = polygon_mask([[(2, 2), (6, 2), (6, 4), (2, 4)]], (10, 8))
    assert mask.shape == (8, 10) and mask[3, 4] and not mask[6, 8]


def test_nothing_evaluable_is_an_error_not_an_empty_table(svt):
    (svt / "img/14_03.jpg").write_bytes(b"broken")
    with pytest.raises(ValueError, match="undecodable or missing image: 1"):
        evaluate("svt", svt, 4, ["bicubic"], ocr=FakeOcr([]))


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main(["evaluate", "--dataset", "svt", "--root", str(tmp_path / "none"), "--method", "bicubic"]) == 2
    assert "SVT folder not found" in capsys.readouterr().err
    assert main(["evaluate", "--dataset", "svt", "--root", str(tmp_path), "--method", "waifu2x"]) == 2
    assert "unknown --method 'waifu2x'" in capsys.readouterr().err
    assert main(["evaluate", "--dataset", "svt", "--root", str(tmp_path), "--method", f"dir:{tmp_path}/x"]) == 2
    assert "folder not found" in capsys.readouterr().err


def test_real_ocr_run_from_the_command_line(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    make_corpus(CorpusConfig(out=corpus, size=256, scales=(4,), seed=3, mode="bicubic",
                             fonts=(FontChoice("builtin", None),)), 2)
    out = tmp_path / "report.json"
    code = main(["evaluate", "--dataset", "synthetic", "--root", str(corpus), "--scale", "4", "--method", "hq",
                 "--method", "nearest", "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "synthetic x4 (LQ: stored in the corpus), 2 images" in printed
    report = json.loads(out.read_text())
    hq, nearest = report["methods"]["hq"]["summary"], report["methods"]["nearest"]["summary"]
    assert hq["f1"] >= 0.9 and hq["f1"] > nearest["f1"]
    assert hq["ssim"] == pytest.approx(1.0) and nearest["psnr_text"] < nearest["psnr"]
    assert hq["psnr"] is None  # identical images: infinite PSNR is written as null (strict JSON)
    assert len(report["methods"]["nearest"]["per_image"]) == 2


def test_make_lq_then_score_another_tools_outputs(svt, tmp_path, capsys):
    lq_dir, out_dir = tmp_path / "lq", tmp_path / "out"
    assert main(["make-lq", "--dataset", "svt", "--root", str(svt), "--scale", "4", "--out", str(lq_dir)]) == 0
    assert "wrote 1 LQ images (x4)" in capsys.readouterr().out
    lq = Image.open(lq_dir / "14_03.png")
    assert lq.size == (40, 30)
    row = json.loads((lq_dir / "lq_params.jsonl").read_text())
    assert row["id"] == "14_03" and row["degradation"]["mode"] == "bicubic"
    out_dir.mkdir()
    lq.resize((160, 120), Image.Resampling.BICUBIC).save(out_dir / "14_03.png")  # "another tool"
    report = evaluate("svt", svt, 4, ["bicubic", f"dir:{out_dir}"], ocr=FakeOcr(TRUTH["14_03"]))
    ours, theirs = report["methods"]["bicubic"], report["methods"][f"dir:{out_dir}"]
    assert theirs["summary"]["psnr"] == pytest.approx(ours["summary"]["psnr"], abs=0.05)
    assert theirs["per_image"][0]["pred"] == ours["per_image"][0]["pred"]
