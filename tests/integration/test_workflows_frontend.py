"""The UI workflows in ComfyUI's own frontend (1920 x 1080): they load with no missing or flagged node,
the prompt the frontend builds from each is its API twin (what drag-and-drop then Queue would send),
the Missing Models dialog offers every linked file, and the saved view is readable: zoom 0.6 or more
(not the frontend's low-quality mode), no node under the sidebar, tab bar, Run toolbar or minimap, no
node overlapping another (title bars and badges included) or a group title, no cut widget label, no
note that needs a scroll bar, no node smaller than the frontend's own minimum.

Needs Node.js, puppeteer-core (set GLYPHSR_NODE_PATH to the node_modules folder holding it) and a
Chromium (CHROMIUM, default /usr/bin/chromium); skipped otherwise. Screenshots go to
GLYPHSR_SCREENSHOT_DIR (default: a temporary folder), one `<workflow>.png` each.
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
sys.path.insert(0, str(HERE.parent.parent / "tools"))
import workflow_graphs  # noqa: E402

NODE_PATH = os.environ.get("GLYPHSR_NODE_PATH", "")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
NAMES = [flow.name for flow in workflow_graphs.all_flows()]
VIEWPORT = (1920, 1080)


@pytest.fixture(scope="module")
def frontend_report(comfy_server, tmp_path_factory) -> dict:
    if not (shutil.which("node") and Path(CHROMIUM).is_file() and (Path(NODE_PATH) / "puppeteer-core").is_dir()):
        pytest.skip("needs node, puppeteer-core in GLYPHSR_NODE_PATH and Chromium (CHROMIUM)")
    shots = Path(os.environ.get("GLYPHSR_SCREENSHOT_DIR") or tmp_path_factory.mktemp("screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    files = [str(workflow_graphs.UI_DIR / f"{name}.json") for name in NAMES]
    proc = subprocess.run(["node", str(HERE / "frontend_load.js"), comfy_server.url, str(shots), *files],
                          env=dict(os.environ, NODE_PATH=NODE_PATH, CHROMIUM=CHROMIUM),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _ui(name: str) -> dict:
    return json.loads((workflow_graphs.UI_DIR / f"{name}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", NAMES)
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


@pytest.mark.parametrize("name", NAMES)
def test_missing_models_dialog_offers_every_linked_file(name, frontend_report):
    linked = {f"{m['directory']} / {m['name']}" for node in _ui(name)["nodes"]
              for m in node.get("properties", {}).get("models", [])}
    offered = frontend_report[f"{name}.json"]["missing_models"]
    for label in linked:
        entry = next((e for e in offered if e.startswith(label)), None)
        assert entry is not None, (label, offered)
        assert "not allowed" not in entry and "Only allowed" not in entry, entry
    if name == "glyphsr_keep_words":  # one download: the upscaler whose look the user wants
        assert linked == {"upscale_models / RealESRGAN_x4plus.pth"}
    elif name not in ("glyphsr_ocr_prompts", "glyphsr_restore_x4"):  # the diffusion workflows
        assert any(label.startswith("controlnet / ") for label in linked)
    else:  # no download needed: Text Restore's model comes with the pack
        assert offered == []


def _overlap(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


@pytest.mark.parametrize("name", NAMES)
def test_saved_view_is_readable_and_clear_of_the_frontends_panels(name, frontend_report):
    loaded = frontend_report[f"{name}.json"]
    assert loaded["ds"]["scale"] >= 0.6 and not loaded["low_quality"]
    assert loaded["ds"] == {"scale": _ui(name)["extra"]["ds"]["scale"], "offset": _ui(name)["extra"]["ds"]["offset"]}
    assert Path(loaded["screenshot"]).is_file()
    width, height = VIEWPORT
    covered = loaded["covered"]
    assert covered, "the sidebar and tab bar were not found: the frontend's layout changed"
    for node in loaded["layout"]:
        left, top, w, h = node["screen"]
        assert 0 <= left and 0 <= top and left + w <= width and top + h <= height, node
        under = [c for c in covered if left <= c[0] <= left + w and top <= c[1] <= top + h]
        assert not under, (node["id"], node["type"], "under", sorted({c[2] for c in under}))


@pytest.mark.parametrize("name", NAMES)
def test_no_overlap_no_cut_label_no_overflowing_note(name, frontend_report):
    loaded = frontend_report[f"{name}.json"]
    layout = loaded["layout"]
    for i, a in enumerate(layout):
        assert a["size"][0] >= a["min_size"][0] and a["size"][1] >= a["min_size"][1], (a["type"], a["size"],
                                                                                        a["min_size"])
        for b in layout[i + 1:]:
            assert not _overlap(a["area"], b["area"]), (a["id"], a["type"], b["id"], b["type"])
    for group in loaded["groups"]:
        x, y, w, _h = group["bounding"]
        for node in layout:
            assert not _overlap([x, y, w, group["title_height"]], node["area"]), (group["title"], node["type"])
    assert loaded["cut_labels"] == []
    assert loaded["overflowing_notes"] == []


def test_templates_browser_shows_each_workflow_with_its_thumbnail(frontend_report):
    """Workflow > Browse Templates, the pack's category: a card per workflow showing workflows/<name>.jpg
    (640 x 480; a missing one would show the frontend's generic picture). ComfyUI 0.15.1 gives a custom
    pack's card its file name as title and, with _ and - as spaces, as description; it reads no index."""
    templates = frontend_report["templates"]
    assert templates["category"] is not None
    for name in NAMES:
        card = next((c for c in templates["cards"] if c["text"].startswith(name)), None)
        assert card is not None, (name, [c["text"] for c in templates["cards"]])
        assert card["loaded"] and (card["width"], card["height"]) == (640, 480), card
