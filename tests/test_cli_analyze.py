import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from textimages import render_words

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "glyphsr_core", *args], cwd=cwd, capture_output=True, text=True)


def test_analyze_writes_glyph_mask_preview_and_report(tmp_path):
    image, _ = render_words([["GRAND", "HOTEL"]], size=(320, 120), font_size=36)
    path = tmp_path / "sign.png"
    image.save(path)
    out = run_cli("analyze", str(path), "-o", str(tmp_path / "out"), "--caption", "a hotel facade", "--scale", "2")
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "out" / "sign_report.json").read_text())
    assert [r["text"] for r in report["ocr"]["regions"]] == ["GRAND", "HOTEL"]
    assert report["prompts"]["text_positive"].startswith('the text "GRAND"')
    assert "a hotel facade" in report["prompts"]["scene_positive"]
    for name in ("glyph", "mask"):
        assert Image.open(tmp_path / "out" / f"sign_{name}.png").size == (640, 240)
    # a picture this small gets numbered markers and a legend strip below it: one 19 px line per word
    assert Image.open(tmp_path / "out" / "sign_preview.png").size == (320, 120 + 2 * 19 + 4)
    assert report["group_letters"] is True


def test_analyze_reports_missing_and_undecodable_images(tmp_path):
    out = run_cli("analyze", str(tmp_path / "missing.png"))
    assert out.returncode == 2 and "image not found" in out.stderr
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    out = run_cli("analyze", str(broken))
    assert out.returncode == 2 and "cannot decode" in out.stderr


def test_analyze_runs_without_torch(tmp_path):
    """The text half of the method (OCR, prompts, glyph map) needs only numpy, Pillow and RapidOCR."""
    image, _ = render_words([["EXIT"]], size=(200, 80), font_size=40)
    image.save(tmp_path / "exit.png")
    block_torch = ("import runpy, sys; sys.modules['torch'] = None; sys.argv = ['glyphsr_core', 'analyze', "
                   f"{str(tmp_path / 'exit.png')!r}]; runpy.run_module('glyphsr_core', run_name='__main__')")
    out = subprocess.run([sys.executable, "-c", block_torch], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "exit_report.json").read_text())
    assert [r["text"] for r in report["ocr"]["regions"]] == ["EXIT"]
