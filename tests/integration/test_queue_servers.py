"""`queue` against two real ComfyUI servers: the restore workflow (workflows/api/glyphsr_restore_x4)
on small text images, outputs the same as running the workflow directly, both servers used, and
when one server is stopped mid-run its inputs finish on the other.

ComfyUI's SaveImage writes 8-bit PNG (clip(255 * x) as uint8) and the restore is deterministic on
CPU, so the queued outputs must equal the direct run's pixels exactly.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from comfy_client import ComfyServer
from glyphsr_core.cli import main

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS))
from textimages import render_words  # noqa: E402

RESTORE_API = TESTS.parent / "workflows" / "api" / "glyphsr_restore_x4.api.json"
WORDS = [["OPEN", "NOW"], ["EXIT"], ["SALE", "50%"], ["CAFE"], ["PARK"], ["STOP", "HERE"]]


@pytest.fixture(scope="module")
def second_server(comfy_server):
    """Another ComfyUI with the pack, in its own base folder and port (stopped by the last test)."""
    base = Path(tempfile.mkdtemp(prefix="glyphsr_comfy2_"))
    server = ComfyServer(comfy_server.comfyui_dir, base)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("queue_in")
    paths = []
    for i, words in enumerate(WORDS):
        image, _ = render_words([words], size=(88 + 4 * i, 32), font_size=16, origin=(4, 7))
        paths.append(folder / f"sign{i}.png")
        image.save(paths[-1])
    return paths


def run_queue(out: Path, servers: list[ComfyServer], inputs: list[Path]) -> int:
    argv = ["queue", *map(str, inputs), "--workflow", str(RESTORE_API), "-o", str(out)]
    for server in servers:
        argv += ["--server", server.url]
    return main(argv)


def manifest(out: Path) -> list[dict]:
    path = out / "queue_manifest.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def direct_run(server: ComfyServer, image: Path) -> np.ndarray:
    """The same workflow queued the plain way (the image put in the input folder by hand)."""
    shutil.copy(image, server.input_dir / f"direct_{image.name}")
    prompt = copy.deepcopy(json.loads(RESTORE_API.read_text()))
    prompt["1"]["inputs"]["image"] = f"direct_{image.name}"
    result = server.queue(prompt)
    with Image.open(result.files("3")[0]) as saved:
        return np.asarray(saved)


def test_inputs_spread_over_two_servers_and_match_a_direct_run(comfy_server, second_server, inputs, tmp_path):
    out = tmp_path / "out"
    assert run_queue(out, [comfy_server, second_server], inputs[:4]) == 0
    records = manifest(out)
    assert [r["status"] for r in records] == ["done"] * 4
    assert {r["server"] for r in records} == {comfy_server.url, second_server.url}
    for image in inputs[:4]:
        with Image.open(out / f"{image.stem}_3_0.png") as queued, Image.open(image) as lq:
            assert queued.size == (lq.width * 4, lq.height * 4)
            assert np.array_equal(np.asarray(queued), direct_run(comfy_server, image)), image.name
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{p.stem}_3_0.png" for p in inputs[:4]]
                                                           + ["queue_manifest.jsonl"])


def test_a_server_stopped_mid_run_leaves_the_rest_to_the_other(comfy_server, second_server, inputs, tmp_path):
    """Runs last in this module: it stops the second server."""
    out = tmp_path / "out"
    code: list[int] = []
    runner = threading.Thread(target=lambda: code.append(run_queue(out, [comfy_server, second_server], inputs)))
    runner.start()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and runner.is_alive():  # stop it once it finished one and runs another
        if any(r["server"] == second_server.url for r in manifest(out)) and second_server.get("/queue")["queue_running"]:
            stopped_at = len(manifest(out))
            second_server.stop()
            break
        time.sleep(0.05)
    else:
        pytest.fail("the second server never got a second input")
    runner.join(timeout=600)
    assert code == [0]
    records = manifest(out)
    assert len(records) == len(inputs) and all(r["status"] == "done" for r in records)
    assert all(r["server"] == comfy_server.url for r in records[stopped_at:])
    lost = [t for r in records for t in r["attempts"]]
    assert lost and all(t["server"] == second_server.url for t in lost), lost
    assert all((out / f"{p.stem}_3_0.png").is_file() for p in inputs)
