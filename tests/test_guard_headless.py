"""`upscale --guard`: the Text Guard after the headless pipeline (tiny random diffusers models, CPU)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("diffusers")
pytest.importorskip("rapidocr")

from glyphsr_core.diffusion.tiny import write_tiny_models
from glyphsr_core.text.fidelity import compare_words
from glyphsr_core.guard import ocr_reader, word_mask
from glyphsr_core.guard.repairs import LADDER
from glyphsr_core.types import OcrResult
from test_guard import tensor
from textimages import render_words

LQ_SIZE = (200, 100)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_tiny_models(tmp_path_factory.mktemp("tiny"), "sd15")


def _run(files, tmp_path, name, *extra):
    from glyphsr_core.cli import main

    out = tmp_path / f"{name}.png"
    code = main(["upscale", str(tmp_path / "lq.png"), "-o", str(out), "--scale", "2", "--base", str(files["base"]),
                 "--scene-controlnet", str(files["scene_controlnet"]), "--steps", "2", "--seed", "3",
                 "--device", "cpu", *extra])
    assert code == 0
    report = json.loads(out.with_name(f"{name}_report.json").read_text())
    return np.asarray(Image.open(out).convert("RGB")), report


def test_guard_brings_garbage_back_to_the_fallback_and_touches_only_word_boxes(files, tmp_path, capsys):
    lq, _ = render_words([["OPEN", "DAILY"]], size=LQ_SIZE, font_size=26, origin=(12, 30))
    lq.save(tmp_path / "lq.png")
    plain, plain_report = _run(files, tmp_path, "plain", "--guard", "-1")
    guarded, report = _run(files, tmp_path, "guarded", "--guard", "1", "--guard-dilation", "6")
    assert "guard" not in plain_report and capsys.readouterr().out.count("text guard: word F1") == 1

    guidance = OcrResult.from_dict(report["ocr"])
    assert [r.text for r in guidance.regions] == ["OPEN", "DAILY"]
    reader = ocr_reader()
    fallback = lq.resize((400, 200), Image.Resampling.BICUBIC)  # the guard's fallback without a restorer
    f1 = {name: compare_words(guidance, reader(tensor(Image.fromarray(im)))).counts.f1
          for name, im in (("plain", plain), ("guarded", guarded), ("fallback", np.asarray(fallback)))}
    guard = report["guard"]
    assert guard["f1_before"] == pytest.approx(f1["plain"]) and f1["plain"] < f1["fallback"]
    assert f1["guarded"] >= max(f1["plain"], f1["fallback"]) - 0.01
    assert guard["f1_after"] == pytest.approx(f1["guarded"])
    assert guard["rounds_run"] == 1 and guard["ocr_passes"] >= 3
    assert {w["action"] for w in guard["words"]} <= {"composited", "resampled"}

    changed = (plain != guarded).any(axis=2)
    assert changed.sum() == guard["changed_pixels"] > 0
    boxes = [tuple(w["box"]) for w in guard["words"] if w["box"]]
    allowed = word_mask(boxes, 400, 200, dilation=6, context=max(rung.context for rung in LADDER)).numpy() > 0  # the widest paste
    assert not (changed & ~allowed).any()  # outside the repaired boxes: bit-identical
