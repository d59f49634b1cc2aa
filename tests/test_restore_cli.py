"""Text Restore from the command line: upscale without --base, analyze --restore, evaluate's restore method."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from glyphsr_core.restore import save_restorer
from glyphsr_core.restore.compact import CompactSR, init_as_bicubic
from test_cli_analyze import run_cli
from textimages import render_words


@pytest.fixture(scope="module")
def bicubic_file(tmp_path_factory):
    model = CompactSR(num_feat=64, num_conv=2, scale=4)
    init_as_bicubic(model, torch.Generator().manual_seed(0))
    return save_restorer(model, tmp_path_factory.mktemp("restorer") / "bicubic_x4.safetensors")


@pytest.fixture(scope="module")
def small_sign(tmp_path_factory):
    image, _ = render_words([["GRAND", "HOTEL"]], size=(320, 120), font_size=36)
    path = tmp_path_factory.mktemp("sign") / "sign.png"
    image.resize((160, 60), Image.Resampling.BICUBIC).save(path)
    return path


def test_upscale_without_base_runs_text_restore_and_reports_the_words(tmp_path, bicubic_file, small_sign):
    out = tmp_path / "out" / "sign_x4.png"
    done = run_cli("upscale", str(small_sign), "-o", str(out), "--restorer", str(bicubic_file), "--tile", "64",
                   "--tile-overlap", "32")
    assert done.returncode == 0, done.stderr
    with Image.open(out) as result, Image.open(small_sign) as lq:
        assert result.size == (640, 240)
        reference = lq.resize((640, 240), Image.Resampling.BICUBIC)
        inner = (slice(16, -16), slice(16, -16))
        diff = np.abs(np.asarray(result, dtype=np.int16) - np.asarray(reference, dtype=np.int16))[inner]
        assert diff.mean() < 1.0  # a bicubic-initialised net is bicubic, tiles and all
    report = json.loads((tmp_path / "out" / "sign_x4_report.json").read_text())
    assert report["stage"].startswith("text restore only") and report["restorer"] == str(bicubic_file)
    assert {"GRAND", "HOTEL"} <= {r["text"] for r in report["ocr"]["regions"]}
    words = [r["text"] for r in report["ocr"]["regions"]]
    assert f"words: {' | '.join(words)}" in done.stdout  # where one word ends stays visible


def test_upscale_without_base_names_a_missing_restorer_file_and_writes_nothing(tmp_path, small_sign):
    done = run_cli("upscale", str(small_sign), "-o", str(tmp_path / "o.png"), "--restorer", str(tmp_path / "no.safetensors"))
    assert done.returncode == 2 and "not found" in done.stderr and not (tmp_path / "o.png").exists()


def test_analyze_restore_reports_both_readings(tmp_path, bicubic_file, small_sign):
    done = run_cli("analyze", str(small_sign), "-o", str(tmp_path), "--restore", "--restorer", str(bicubic_file))
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "sign_report.json").read_text())
    assert "ocr_input" in report and Image.open(report["restored"]).size == (640, 240)
    assert {"GRAND", "HOTEL"} <= {r["text"] for r in report["ocr"]["regions"]}


def test_evaluate_lists_a_restorer_next_to_bicubic(tmp_path, bicubic_file, capsys):
    from glyphsr_core.cli import main
    from glyphsr_core.data.corpus import CorpusConfig, make_corpus

    corpus = tmp_path / "corpus"
    from glyphsr_core.data.corpus_fonts import FontChoice

    make_corpus(CorpusConfig(out=corpus, size=256, scales=(4,), seed=3, mode="bicubic",
                             fonts=(FontChoice("builtin", None),)), 2)
    code = main(["evaluate", "--dataset", "synthetic", "--root", str(corpus), "--scale", "4", "--method", "bicubic",
                 "--method", f"restore:{bicubic_file}", "--json", str(tmp_path / "r.json")])
    assert code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    rows = report["methods"]
    ours, bicubic = rows[f"restore:{bicubic_file}"]["summary"], rows["bicubic"]["summary"]
    assert ours["images"] == bicubic["images"] == 2
    assert abs(ours["psnr"] - bicubic["psnr"]) < 1.0  # the bicubic-initialised net is bicubic (borders aside)
    assert main(["evaluate", "--dataset", "synthetic", "--root", str(corpus), "--scale", "3",
                 "--method", f"restore:{bicubic_file}"]) == 2
