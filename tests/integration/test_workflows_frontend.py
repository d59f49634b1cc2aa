"""The UI workflows in ComfyUI's own frontend: they load with no missing or flagged node, and the
prompt the frontend builds from each is its API twin (what drag-and-drop then Queue would send).

Needs Node.js, puppeteer-core (set GLYPHSR_NODE_PATH to the node_modules folder holding it) and a
Chromium (CHROMIUM, default /usr/bin/chromium); skipped otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tools"))
import workflow_graphs  # noqa: E402

NODE_PATH = os.environ.get("GLYPHSR_NODE_PATH", "")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def frontend_report(comfy_server) -> dict:
    if not (shutil.which("node") and Path(CHROMIUM).is_file() and (Path(NODE_PATH) / "puppeteer-core").is_dir()):
        pytest.skip("needs node, puppeteer-core in GLYPHSR_NODE_PATH and Chromium (CHROMIUM)")
    files = [str(p) for p in sorted(workflow_graphs.UI_DIR.glob("*.json"))]
    proc = subprocess.run(["node", str(HERE / "frontend_load.js"), comfy_server.url, *files],
                          env=dict(os.environ, NODE_PATH=NODE_PATH, CHROMIUM=CHROMIUM),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.mark.parametrize("name", ["glyphsr_sdxl_x4", "glyphsr_sd15_x4", "glyphsr_ocr_prompts", "glyphsr_no_vlm"])
def test_frontend_loads_the_workflow_and_queues_its_api_twin(name, frontend_report, comfy_server):
    loaded = frontend_report[f"{name}.json"]
    assert loaded["bad"] == []
    api = json.loads((workflow_graphs.API_DIR / f"{name}.api.json").read_text(encoding="utf-8"))
    assert sorted(loaded["prompt"]) == sorted(api)
    for node_id, node in loaded["prompt"].items():
        known = comfy_server.object_info(node["class_type"])["input"]
        server_inputs = {**known.get("required", {}), **known.get("optional", {})}
        # the frontend also sends its own display-only widgets (Preview as Text's preview/previewMode);
        # the server ignores inputs a node does not declare
        sent = {k: v for k, v in node["inputs"].items() if k in server_inputs}
        assert (node["class_type"], sent) == (api[node_id]["class_type"], api[node_id]["inputs"]), node_id
