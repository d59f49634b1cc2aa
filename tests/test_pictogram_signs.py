"""Signs with pictograms, read for real: the word filter keeps pictograms out of the guidance.

RapidOCR reads the walking figure of a Paris signpost as "大" and a museum icon as "血"; the
standard filter drops them (and says so in the reports); `off` keeps them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from glyphsr_core.ocr import filter_words, read_text
from signs import render_sign

REPO = Path(__file__).resolve().parent.parent
PARIS = [(["Musée du LOUVRE"], "pedestrian"), (["LES ARTS DÉCORATIFS"], "pedestrian"),
         (["Théâtre du", "PALAIS-ROYAL"], "pedestrian"), (["Musée d'Orsay"], "museum")]


@pytest.mark.parametrize("lines, pictogram", PARIS)
def test_standard_filter_drops_the_pictogram_and_keeps_every_word(lines, pictogram):
    image, _ = render_sign(lines, pictogram)
    raw = read_text(image)
    kept, dropped = filter_words(raw)
    words = " ".join(lines).split()
    assert kept.words == words, f"read {raw.words}"
    assert len(raw.words) > len(words), f"the pictogram was not read as a word this time: {raw.words}"
    assert all(d.region.text not in words for d in dropped) and dropped


def _analyze(tmp_path, *extra):
    image, _ = render_sign(["Musée du LOUVRE"], "pedestrian")
    path = tmp_path / "louvre.png"
    image.save(path)
    out = subprocess.run([sys.executable, "-m", "glyphsr_core", "analyze", str(path), "-o", str(tmp_path), *extra],
                         cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads((tmp_path / "louvre_report.json").read_text(encoding="utf-8")), out.stdout


def test_analyze_reports_what_the_filter_dropped(tmp_path):
    report, stdout = _analyze(tmp_path)
    assert report["word_filter"] == "standard"
    assert [r["text"] for r in report["ocr"]["regions"]] == ["Musée", "du", "LOUVRE"]
    (dropped,) = report["ocr_dropped"]
    assert dropped["reason"] == "lone CJK character among Latin words" and len(dropped["quad"]) == 4
    assert dropped["text"] not in report["prompts"]["text_positive"]
    assert report["prompts"]["text_positive"].startswith('the text "Musée" at the ')
    assert f"dropped {dropped['text']!r}: lone CJK character" in stdout


def test_analyze_word_filter_off_keeps_the_pictogram(tmp_path):
    report, _ = _analyze(tmp_path, "--word-filter", "off")
    assert report["ocr_dropped"] == [] and len(report["ocr"]["regions"]) == 4


def test_ocr_extract_node_lists_dropped_tokens_and_draws_them_red(pack):
    image, _ = render_sign(["Musée du LOUVRE"], "pedestrian")
    tensor = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)[None]
    node = pack.NODE_CLASS_MAPPINGS["GlyphSR_OCRExtract"]()
    assert node.INPUT_TYPES()["optional"]["word_filter"][1]["default"] == "standard"
    text, as_json, _, preview = node.extract(tensor, 0.5, "auto", 0)
    assert text[0].words == ["Musée", "du", "LOUVRE"]
    record = json.loads(as_json)[0]
    assert [d["reason"] for d in record["dropped"]] == ["lone CJK character among Latin words"]
    from glyphsr_core.text.text_input import parse_text_input

    assert parse_text_input(as_json, image.width, image.height)[0].words == ["Musée", "du", "LOUVRE"]
    red = (preview[0, ..., 0] > 0.9) & (preview[0, ..., 1] < 0.35) & (preview[0, ..., 2] < 0.35)
    assert red.sum() > 50
    text_off, json_off, _, _ = node.extract(tensor, 0.5, "auto", 0, word_filter="off")
    assert len(text_off[0].words) == 4 and json.loads(json_off)[0]["dropped"] == []


@pytest.fixture(scope="module")
def tiny_sd15(tmp_path_factory):
    pytest.importorskip("diffusers")
    from glyphsr_core.diffusion.tiny import write_tiny_models

    return write_tiny_models(tmp_path_factory.mktemp("tiny_models"), "sd15")


@pytest.mark.parametrize("policy", ["standard", "off"])
def test_upscale_filters_ocr_words_and_reports_the_dropped_ones(tiny_sd15, tmp_path, policy):
    from glyphsr_core.cli import main

    image, _ = render_sign(["Musée du LOUVRE"], "pedestrian")
    image.save(tmp_path / "in.png")
    out = tmp_path / "up.png"
    code = main(["upscale", str(tmp_path / "in.png"), "-o", str(out), "--scale", "0.25", "--base",
                 str(tiny_sd15["base"]), "--scene-controlnet", str(tiny_sd15["scene_controlnet"]), "--steps", "1",
                 "--device", "cpu", "--word-filter", policy, "--ocr-source", "lq"])
    assert code == 0
    report = json.loads((tmp_path / "up_report.json").read_text(encoding="utf-8"))
    words = [r["text"] for r in report["ocr"]["regions"]]
    assert report["settings"]["word_filter"] == policy
    if policy == "standard":
        assert words == ["Musée", "du", "LOUVRE"]
        assert [d["reason"] for d in report["ocr_dropped"]] == ["lone CJK character among Latin words"]
        assert report["ocr_dropped"][0]["text"] not in report["prompts"]["text_positive"]
    else:
        assert len(words) == 4 and report["ocr_dropped"] == []
