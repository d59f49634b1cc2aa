"""The shipped workflows: they parse, use only known nodes, join outputs to inputs of the same type,
carry widget values the nodes accept, and each UI workflow and its API twin describe the same graph."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "tools"))

import node_specs  # noqa: E402
import workflow_graphs  # noqa: E402
from workflow_check import check_api, check_ui  # noqa: E402
from workflow_format import ui_to_api  # noqa: E402

UI_FILES = sorted(workflow_graphs.UI_DIR.glob("*.json"))
API_FILES = sorted(workflow_graphs.API_DIR.glob("*.api.json"))
NAMES = ["glyphsr_sdxl_x4", "glyphsr_sd15_x4", "glyphsr_ocr_prompts", "glyphsr_no_vlm"]


@pytest.fixture(scope="module")
def specs(pack):
    return node_specs.load_specs(pack)


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_every_workflow_ships_in_both_formats():
    assert sorted(p.stem for p in UI_FILES) == sorted(NAMES)
    assert sorted(p.name.removesuffix(".api.json") for p in API_FILES) == sorted(NAMES)


def test_templates_browser_lists_only_ui_workflows():
    """ComfyUI 0.15.1 lists custom_nodes/<pack>/workflows/*.json (app/custom_node_manager.py); API twins
    sit one folder down so the browser never offers a file it cannot draw."""
    for path in workflow_graphs.UI_DIR.glob("*.json"):
        data = load(path)
        assert data.get("version") == 0.4 and isinstance(data.get("nodes"), list), path.name


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.name)
def test_ui_workflow_is_valid(path, specs):
    assert check_ui(load(path), specs) == []


@pytest.mark.parametrize("path", API_FILES, ids=lambda p: p.name)
def test_api_workflow_is_valid(path, specs):
    assert check_api(load(path), specs) == []


@pytest.mark.parametrize("name", NAMES)
def test_ui_and_api_twins_describe_the_same_graph(name, specs):
    ui = load(workflow_graphs.UI_DIR / f"{name}.json")
    api = load(workflow_graphs.API_DIR / f"{name}.api.json")
    assert ui_to_api(ui, specs) == api


def test_committed_files_match_their_description(specs):
    stale = [str(path) for path, text in workflow_graphs.rendered_files(specs).items()
             if not path.is_file() or path.read_text(encoding="utf-8") != text]
    assert stale == [], "run: python tests/tools/workflow_graphs.py"


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.name)
def test_every_node_sits_in_a_group_with_a_note(path):
    ui = load(path)

    def inside(node, group):
        x, y, w, h = group["bounding"]
        (nx, ny), (nw, nh) = node["pos"], node["size"]
        return x <= nx and y <= ny and nx + nw <= x + w and ny + nh <= y + h

    for node in ui["nodes"]:
        assert sum(inside(node, g) for g in ui["groups"]) == 1, f"node {node['id']} {node['type']}"
    for group in ui["groups"]:
        notes = [n for n in ui["nodes"] if n["type"] == "Note" and inside(n, group)]
        assert len(notes) == 1 and len(notes[0]["widgets_values"][0]) > 40, group["title"]


def _wiring(prompt: dict):
    """`src(node_id, input)` -> (class_type of the source node, output index, source id)."""
    def src(node_id: str, name: str) -> tuple[str, int, str]:
        link = prompt[node_id]["inputs"][name]
        assert isinstance(link, list), f"{prompt[node_id]['class_type']}.{name} is not connected"
        return prompt[link[0]]["class_type"], link[1], link[0]

    def only(class_type: str) -> str:
        (node_id,) = [k for k, n in prompt.items() if n["class_type"] == class_type]
        return node_id

    return src, only


@pytest.mark.parametrize("name", ["glyphsr_sdxl_x4", "glyphsr_sd15_x4", "glyphsr_no_vlm"])
def test_upscale_workflows_wire_the_whole_method(name):
    """Each step's output reaches the right input: the method runs, not just its nodes."""
    prompt = load(workflow_graphs.API_DIR / f"{name}.api.json")
    src, only = _wiring(prompt)
    load_image, upscale, ocr = only("LoadImage"), only("ImageScaleBy"), only("GlyphSR_OCRExtract")
    prompts, apply, sampler = only("GlyphSR_BuildPrompts"), only("GlyphSR_ApplyTSControlNet"), only(
        "GlyphSR_PingPongKSampler")
    glyph, fix, check = only("GlyphSR_GlyphRender"), only("GlyphSR_ColorFix"), only("GlyphSR_TextFidelity")
    assert src(upscale, "image")[2] == load_image
    assert src(ocr, "image")[2] == load_image  # OCR reads the LQ input, not the bicubic upscale
    assert src(prompts, "text")[::2] == ("GlyphSR_OCRExtract", ocr) and src(glyph, "text")[2] == ocr
    # Build Prompts output k -> its own encoder -> Apply TS-ControlNet input k -> Ping-Pong KSampler input k
    for k, role in enumerate(("scene_positive", "scene_negative", "text_positive", "text_negative")):
        encoder = src(apply, role)
        assert encoder[:2] == ("CLIPTextEncode", 0)
        assert src(encoder[2], "text")[1:] == (k, prompts), role
        assert src(sampler, role)[1:] == (k, apply), role
    assert src(apply, "image")[2] == upscale and src(apply, "glyph")[1:] == (0, glyph)
    assert src(apply, "text_mask")[1:] == (1, glyph)
    assert src(src(sampler, "latent_image")[2], "pixels")[2] == upscale
    decoded = src(fix, "image")
    assert decoded[0] == "VAEDecode" and src(decoded[2], "samples")[2] == sampler
    assert src(fix, "reference")[2] == upscale
    assert src(only("SaveImage"), "images")[2] == fix
    assert src(check, "image")[2] == fix and src(check, "text")[2] == ocr
    if name != "glyphsr_no_vlm":
        caption = src(prompts, "caption")
        assert caption[0] == "GlyphSR_VLMCaption" and src(caption[2], "image")[2] == load_image
    else:
        assert "GlyphSR_VLMCaption" not in {n["class_type"] for n in prompt.values()}


def test_ocr_prompts_workflow_stops_at_the_prompts():
    ocr_only = load(workflow_graphs.API_DIR / "glyphsr_ocr_prompts.api.json")
    src, only = _wiring(ocr_only)
    prompts = only("GlyphSR_BuildPrompts")
    assert src(prompts, "text")[0] == "GlyphSR_OCRExtract" and src(prompts, "caption")[0] == "GlyphSR_VLMCaption"
    assert not {"CheckpointLoaderSimple", "GlyphSR_PingPongKSampler", "VAEDecode"} & {
        n["class_type"] for n in ocr_only.values()}


def test_core_snapshot_covers_the_core_nodes_used():
    snapshot = node_specs.core_specs()
    assert workflow_graphs.core_node_types() <= set(snapshot), "run tests/tools/snapshot_core_nodes.py"
    assert json.loads(node_specs.CORE_SNAPSHOT.read_text())["comfyui_version"] == "0.15.1"


# ---------------------------------------------------------------------------------------------
# the checks catch what ComfyUI would reject


def _node(ui, class_type):
    return next(n for n in ui["nodes"] if n["type"] == class_type)


def _mutated(mutate):
    ui = load(workflow_graphs.UI_DIR / "glyphsr_sd15_x4.json")
    mutate(ui)
    return ui


@pytest.mark.parametrize("mutate, expected", [
    (lambda ui: _node(ui, "GlyphSR_PingPongKSampler")["widgets_values"].pop(1), "widget values for"),
    (lambda ui: _node(ui, "GlyphSR_PingPongKSampler")["widgets_values"].__setitem__(1, 20), "control_after_generate"),
    (lambda ui: _node(ui, "GlyphSR_PingPongKSampler")["widgets_values"].__setitem__(2, 0), "below the minimum"),
    (lambda ui: _node(ui, "GlyphSR_PingPongKSampler")["widgets_values"].__setitem__(2, 2.5), "expected INT"),
    (lambda ui: _node(ui, "GlyphSR_OCRExtract")["widgets_values"].__setitem__(1, "8"), "is not one of"),
    (lambda ui: _node(ui, "GlyphSR_OCRExtract")["widgets_values"].__setitem__(0, 1.5), "above the maximum"),
    (lambda ui: _node(ui, "LoadImage")["widgets_values"].pop(), "widget values for"),
    (lambda ui: _node(ui, "VAEDecode").__setitem__("type", "VAEDecodeTiledX"), "unknown node type"),
    (lambda ui: ui["links"][0].__setitem__(5, "LATENT"), "says type"),
    (lambda ui: _node(ui, "CheckpointLoaderSimple")["widgets_values"].__setitem__(0, "other.safetensors"),
     "which no widget selects"),
    (lambda ui: _node(ui, "VAEDecode")["inputs"][0].__setitem__("link", None), "is not connected"),
])
def test_ui_check_catches(mutate, expected, specs):
    problems = check_ui(_mutated(mutate), specs)
    assert any(expected in p for p in problems), problems


def test_ui_check_catches_a_link_between_different_types(specs):
    ui = load(workflow_graphs.UI_DIR / "glyphsr_sd15_x4.json")
    decode = _node(ui, "VAEDecode")
    link = next(l for l in ui["links"] if l[0] == decode["inputs"][0]["link"])
    ckpt = _node(ui, "CheckpointLoaderSimple")
    link[1], link[2], link[5] = ckpt["id"], 0, "MODEL"  # MODEL into samples (LATENT)
    ckpt["outputs"][0]["links"].append(link[0])
    assert any("cannot feed 'samples'" in p for p in check_ui(ui, specs))


def test_api_check_catches(specs):
    api = load(workflow_graphs.API_DIR / "glyphsr_sd15_x4.api.json")
    broken = copy.deepcopy(api)
    sampler = next(n for n in broken.values() if n["class_type"] == "GlyphSR_PingPongKSampler")
    sampler["inputs"]["sampler_name"] = "not_a_sampler"
    del sampler["inputs"]["model"]
    sampler["inputs"]["latent_image"] = [next(k for k, n in broken.items() if n["class_type"] == "LoadImage"), 0]
    problems = check_api(broken, specs)
    assert any("'not_a_sampler' is not one of" in p for p in problems)
    assert any("required input 'model' is missing" in p for p in problems)
    assert any("cannot feed 'latent_image'" in p for p in problems)
    no_output = {k: n for k, n in api.items() if n["class_type"] not in ("SaveImage", "PreviewImage", "PreviewAny")}
    assert any("no output node" in p for p in check_api(no_output, specs))


def test_model_file_combos_accept_any_file_name(specs):
    api = load(workflow_graphs.API_DIR / "glyphsr_sd15_x4.api.json")
    ckpt = next(n for n in api.values() if n["class_type"] == "CheckpointLoaderSimple")
    ckpt["inputs"]["ckpt_name"] = "my_finetune.safetensors"
    assert check_api(api, specs) == []
    ckpt["inputs"]["ckpt_name"] = ""
    assert any("expected a file name" in p for p in check_api(api, specs))
