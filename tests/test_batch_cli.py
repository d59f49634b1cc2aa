"""Folders through the real commands and the bundled Text Restore: mirrored outputs, the manifest, skip and
--overwrite, a corrupt image, Ctrl-C and resume, and two processes under `accelerate launch`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from glyphsr_core.cli import main
from textimages import render_words

REPO = Path(__file__).resolve().parent.parent
WORDS = {"exit": "EXIT", "open": "OPEN", "hotel": "HOTEL", "bar": "BAR", "taxi": "TAXI", "cafe": "CAFE"}
NAMES = ["exit.png", "open.png", "sub/bar.jpg", "sub/cafe.png", "sub/hotel.png", "taxi.png"]


def _sign(word: str) -> Image.Image:
    image, _ = render_words([[word]], size=(48 + 26 * len(word), 64), font_size=32, origin=(16, 12))
    return image.resize((image.width // 2, image.height // 2), Image.Resampling.BICUBIC)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A folder of six small signs (one JPEG, two in a subfolder) and a corrupt file, upscaled once."""
    root = tmp_path_factory.mktemp("batch")
    for name in NAMES:
        path = root / "in" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        _sign(WORDS[Path(name).stem]).save(path, quality=95)
    (root / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    code = main(["upscale", str(root / "in"), "-o", str(root / "ref")])
    return root, code


def _outputs(folder: Path, *also: Path) -> dict[str, bytes]:
    """Every output file but the manifest, reports with the folder's own path (and `also`'s: copied
    reports) replaced by 'OUT'."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != "manifest.jsonl":
            data = path.read_bytes()
            if path.suffix == ".json":
                for written in (folder, *also):
                    data = data.replace(str(written).encode(), b"OUT")
            found[path.relative_to(folder).as_posix()] = data
    return found


def _manifest(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


def test_a_folder_is_mirrored_and_every_image_recorded_and_only_the_corrupt_one_fails(run, capsys):
    root, code = run
    assert code == 1
    expected = ["broken.png", "exit.png", "open.png", "sub/bar.png", "sub/cafe.png", "sub/hotel.png", "taxi.png"]
    lines = _manifest(root / "ref")
    assert [Path(l["output"]).relative_to(root / "ref").as_posix() for l in lines] == expected
    assert [l["status"] for l in lines] == ["failed"] + ["ok"] * 6
    assert lines[0]["error"].startswith(f"cannot decode {root / 'in' / 'broken.png'} as an image")
    for line in lines[1:]:
        report = json.loads(Path(line["output"]).with_name(Path(line["output"]).stem + "_report.json").read_text())
        assert line["words"] == len(report["ocr"]["regions"]) and line["error"] is None and line["seconds"] > 0
        assert report["image"] == line["input"] and Image.open(line["output"]).size == \
            tuple(4 * s for s in Image.open(line["input"]).size)
    assert sum(l["words"] for l in lines[1:]) >= 4  # most signs read back
    assert not list((root / "ref").rglob("*.partial"))


def test_the_folder_run_gives_the_single_image_bytes(run, tmp_path, capsys):
    root, _ = run
    assert main(["upscale", str(root / "in" / "sub" / "bar.jpg"), "-o", str(tmp_path / "bar.png")]) == 0
    assert (tmp_path / "bar.png").read_bytes() == (root / "ref" / "sub" / "bar.png").read_bytes()
    assert "words: " in capsys.readouterr().out  # the single-image form prints as before


def test_complete_outputs_are_skipped_a_missing_report_redone_and_overwrite_redoes_all(run, tmp_path, capsys):
    root, _ = run
    out = tmp_path / "out"
    shutil.copytree(root / "ref", out)
    (out / "open_report.json").unlink()  # stopped between image and report: not complete
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    capsys.readouterr()
    assert main(["upscale", str(root / "in"), "-o", str(out)]) == 1
    printed = capsys.readouterr().out.splitlines()
    assert printed[-2].startswith("7 image(s): 1 ok, 5 skipped, 1 failed") and printed[-1].startswith("exit code 1")
    assert "models loaded: 2 (once for 7 image(s))" in printed  # Text Restore and OCR, once
    assert [l["status"] for l in _manifest(out)] == ["failed", "skipped", "ok", "skipped", "skipped", "skipped",
                                                       "skipped"]
    assert [l["words"] for l in _manifest(out)] == [l["words"] for l in _manifest(root / "ref")]
    assert all(p.stat().st_mtime_ns == t for p, t in before.items() if p.name != "open.png")
    assert _outputs(out, root / "ref") == _outputs(root / "ref")
    assert main(["upscale", str(root / "in" / "exit.png"), str(root / "in" / "taxi.png"), "-o", str(out),
                 "--overwrite", "--manifest", str(tmp_path / "again.jsonl")]) == 0
    assert [l["status"] for l in _manifest(out)] == ["failed", "skipped", "ok"] + ["skipped"] * 4  # untouched
    again = [json.loads(line) for line in (tmp_path / "again.jsonl").read_text().splitlines()]
    assert [(Path(l["output"]).name, l["status"]) for l in again] == [("exit.png", "ok"), ("taxi.png", "ok")]
    assert (out / "exit.png").stat().st_mtime_ns != before[out / "exit.png"]
    assert _outputs(out, root / "ref") == _outputs(root / "ref")


def test_ctrl_c_leaves_whole_files_and_the_resumed_run_matches_bytes(run, tmp_path):
    root, _ = run
    out = tmp_path / "out"
    command = [sys.executable, "-m", "glyphsr_core", "upscale", str(root / "in"), "-o", str(out)]
    worker = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # even if ignored here
    manifest = out / "manifest.jsonl"
    deadline = time.monotonic() + 120
    while not (manifest.is_file() and len(manifest.read_text().splitlines()) >= 3) and time.monotonic() < deadline:
        time.sleep(0.02)
    worker.send_signal(signal.SIGINT)
    _, err = worker.communicate(timeout=60)
    assert worker.returncode == 130, err
    assert "run the same command again to resume" in err
    lines = _manifest(out)  # every line whole JSON
    assert 3 <= len(lines) < 7
    assert not list(out.rglob("*.partial"))
    reference = _outputs(root / "ref")
    for name, data in _outputs(out).items():  # what is there is whole and final
        assert data == reference[name], name
    resumed = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert resumed.returncode == 1 and resumed.stdout.splitlines()[-1].startswith("exit code 1")
    assert [l["status"] for l in _manifest(out)].count("skipped") >= 2
    assert _outputs(out) == reference


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_processes_under_accelerate_share_the_folder_and_match_one_process(run, tmp_path):
    root, _ = run
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    done = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                           "--main_process_port", str(_free_port()), "-m", "glyphsr_core", "upscale",
                           str(root / "in"), "-o", str(out)], cwd=REPO, capture_output=True, text=True, env=env)
    assert done.returncode != 0, done.stderr  # the corrupt image: exit code 1 in both processes
    assert "7 image(s) on 2 processes: 6 ok, 0 skipped, 1 failed" in done.stdout, done.stdout + done.stderr
    assert "process 0: models loaded: 2 (once for 4 image(s))" in done.stdout
    assert "process 1: models loaded: 2 (once for 3 image(s))" in done.stdout
    one, two = _manifest(root / "ref"), _manifest(out)
    assert [(l["input"], l["status"], l["words"]) for l in two] == [(l["input"], l["status"], l["words"]) for l in one]
    assert sorted(p.name for p in out.iterdir() if "manifest" in p.name) == ["manifest.jsonl"]
    assert _outputs(out) == _outputs(root / "ref")


def test_analyze_and_keep_words_take_folders_and_a_missing_lq_partner_fails_alone(run, tmp_path, capsys):
    root, _ = run
    assert main(["analyze", str(root / "in" / "sub"), "-o", str(tmp_path / "an")]) == 0
    assert sorted(p.relative_to(tmp_path / "an").as_posix() for p in (tmp_path / "an").rglob("*_report.json")) == \
        ["bar_report.json", "cafe_report.json", "hotel_report.json"]
    assert [l["words"] for l in _manifest(tmp_path / "an")] == [l["words"] for l in _manifest(root / "ref")[3:6]]
    shutil.copy(root / "ref" / "exit.png", root / "ref" / "sub" / "lonely.png")
    try:
        code = main(["keep-words", str(root / "ref" / "sub" / "*.png"), "--lq", str(root / "in" / "sub"),
                     "-o", str(tmp_path / "kw"), "--reference", "lq"])
    finally:
        (root / "ref" / "sub" / "lonely.png").unlink()
    assert code == 1
    lines = _manifest(tmp_path / "kw")
    assert [(Path(l["input"]).name, l["status"]) for l in lines] == [
        ("bar.png", "ok"), ("cafe.png", "ok"), ("hotel.png", "ok"), ("lonely.png", "failed")]
    assert lines[3]["error"] == f"no LQ partner for lonely.png in {root / 'in' / 'sub'} (looked for the same " \
                                "relative name with any image extension)"
    report = json.loads((tmp_path / "kw" / "bar_report.json").read_text())
    assert report["lq"] == str(root / "in" / "sub" / "bar.jpg") and not (tmp_path / "kw" / "lonely.png").exists()


def test_a_folder_with_the_diffusion_stages_loads_the_pipeline_once_and_matches_single_runs(tmp_path, capsys):
    pytest.importorskip("diffusers")
    from glyphsr_core.diffusion.tiny import write_tiny_models

    files = write_tiny_models(tmp_path / "tiny", "sd15")
    for word in ("EXIT", "BAR"):
        _sign(word).save(_ensure(tmp_path / "in" / f"{word.lower()}.png"))
    flags = ["--scale", "2", "--base", str(files["base"]), "--scene-controlnet", str(files["scene_controlnet"]),
             "--steps", "2", "--cfg", "3", "--seed", "5", "--device", "cpu"]
    assert main(["upscale", str(tmp_path / "in"), "-o", str(tmp_path / "many"), *flags]) == 0
    assert "models loaded: 3 (once for 2 image(s))" in capsys.readouterr().out  # Text Restore, OCR, pipeline
    assert main(["upscale", str(tmp_path / "in" / "exit.png"), "-o", str(tmp_path / "one.png"), *flags]) == 0
    assert (tmp_path / "one.png").read_bytes() == (tmp_path / "many" / "exit.png").read_bytes()
    assert [l["status"] for l in _manifest(tmp_path / "many")] == ["ok", "ok"]


def _ensure(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_tiles_of_one_image_report_through_the_progress_hook(run, tmp_path, caplog):
    import logging

    root, _ = run
    with caplog.at_level(logging.DEBUG, logger="glyphsr_core.batch"):
        assert main(["upscale", str(root / "in" / "sub" / "ca*.png"), "-o", str(tmp_path), "--tile", "16",
                     "--tile-overlap", "8"]) == 0
    counts = [tuple(map(int, m.strip().split("/"))) for m in caplog.messages if m.startswith("  ")]
    tiles = counts[0][1]  # how many, is the tiling's business
    assert tiles > 1 and counts == [(k, tiles) for k in range(1, tiles + 1)]


def test_stage_one_goes_to_the_device_asked_for_and_stays_on_the_cpu_otherwise():
    """Under a launcher each rank's Text Restore runs on its own device (here the `meta` device stands in
    for `cuda:N`); with neither --device nor a rank device it stays on the CPU."""
    import argparse

    from glyphsr_core.commands.upscale import _Models
    from glyphsr_core.restore.cli_support import load_cli_restorer

    def device_of(loaded):
        return next(loaded.model.parameters()).device.type

    plain = _Models(argparse.Namespace(device=None, restorer=None))
    assert device_of(plain._on_device(load_cli_restorer(None))) == "cpu"
    ranked = _Models(argparse.Namespace(device=None, restorer=None))
    ranked.device = "meta"
    assert device_of(ranked._on_device(load_cli_restorer(None))) == "meta"
    asked = _Models(argparse.Namespace(device="meta", restorer=None))
    assert device_of(asked._on_device(load_cli_restorer(None))) == "meta"
