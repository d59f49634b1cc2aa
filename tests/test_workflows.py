"""The shipped workflows: they parse, use only known nodes, join outputs to inputs of the same type,
carry widget values the nodes accept, and each UI workflow and its API twin describe the same graph."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import node_specs  # noqa: E402
import workflow_format  # noqa: E402
import workflow_graphs  # noqa: E402
from workflow_check import check_api, check_ui  # noqa: E402
from workflow_format import drawn_areas, to_screen, ui_to_api  # noqa: E402

UI_FILES = sorted(workflow_graphs.UI_DIR.glob("*.json"))
API_FILES = sorted(workflow_graphs.API_DIR.glob("*.api.json"))
NAMES = ["glyphsr_sdxl_x4", "glyphsr_sdxl_x4_tiled", "glyphsr_sd15_x4", "glyphsr_ocr_prompts", "glyphsr_no_vlm",
         "glyphsr_restore_x4", "glyphsr_keep_words"]


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
    assert stale == [], "run: python tools/workflow_graphs.py"


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


def test_upscale_workflows_run_the_whole_method():
    for name in ("glyphsr_sdxl_x4", "glyphsr_sd15_x4", "glyphsr_no_vlm"):
        types = [n["class_type"] for n in load(workflow_graphs.API_DIR / f"{name}.api.json").values()]
        for needed in ("LoadImage", "GlyphSR_TextRestore", "ImageScaleBy", "GlyphSR_OCRExtract", "GlyphSR_BuildPrompts",
                       "GlyphSR_GlyphRender", "GlyphSR_ApplyTSControlNet", "VAEEncode", "GlyphSR_PingPongKSampler",
                       "VAEDecode", "GlyphSR_ColorFix", "GlyphSR_TextFidelity", "SaveImage"):
            assert needed in types, (name, needed)
        assert types.count("CLIPTextEncode") == 4
        assert ("GlyphSR_VLMCaption" in types) == (name != "glyphsr_no_vlm")
        _check_stage_one_wiring(load(workflow_graphs.API_DIR / f"{name}.api.json"))
    ocr_only = [n["class_type"] for n in load(workflow_graphs.API_DIR / "glyphsr_ocr_prompts.api.json").values()]
    assert "GlyphSR_BuildPrompts" in ocr_only and "GlyphSR_VLMCaption" in ocr_only
    assert not {"CheckpointLoaderSimple", "GlyphSR_PingPongKSampler", "VAEDecode"} & set(ocr_only)


def test_tiled_workflow_tiles_the_vae_the_sampling_and_the_prompts():
    prompt = load(workflow_graphs.API_DIR / "glyphsr_sdxl_x4_tiled.api.json")
    types = [n["class_type"] for n in prompt.values()]
    assert not {"VAEEncode", "VAEDecode", "GlyphSR_PingPongKSampler"} & set(types)
    encode_id, _ = _only(prompt, "VAEEncodeTiled")
    prompts_id, tile_prompts = _only(prompt, "GlyphSR_TilePrompts")
    sampler_id, sampler = _only(prompt, "GlyphSR_TiledPingPongKSampler")
    _decode_id, decode = _only(prompt, "VAEDecodeTiled")
    words_id, _ = _only(prompt, "GlyphSR_ReviewWords")
    caption_id, _ = _only(prompt, "GlyphSR_VLMCaption")
    assert tile_prompts["inputs"]["latent"] == [encode_id, 0] == sampler["inputs"]["latent_image"]
    assert tile_prompts["inputs"]["text"] == [words_id, 0] and tile_prompts["inputs"]["caption"] == [caption_id, 0]
    assert sampler["inputs"]["tile_prompts"] == [prompts_id, 0] and decode["inputs"]["samples"] == [sampler_id, 0]
    for key in ("tile_size", "tile_overlap"):  # the grid both nodes must agree on
        assert tile_prompts["inputs"][key] == sampler["inputs"][key]
    assert sampler["inputs"]["tile_size"] == 1024 and sampler["inputs"]["tile_overlap"] == 128
    _check_stage_one_wiring(prompt)


def _only(prompt: dict, class_type: str) -> tuple[str, dict]:
    found = [(k, n) for k, n in prompt.items() if n["class_type"] == class_type]
    assert len(found) == 1, (class_type, len(found))
    return found[0]


def _check_stage_one_wiring(prompt: dict) -> None:
    """OCR reads R; the scene branch sees the upscaled LQ, the text branch R; the shared text branch by
    default; the mask acts (text branch inside, scene branch outside)."""
    restore_id, restore = _only(prompt, "GlyphSR_TextRestore")
    scale_id, _ = _only(prompt, "ImageScaleBy")
    load_id, _ = _only(prompt, "LoadImage")
    assert restore["inputs"]["image"] == [load_id, 0] and restore["inputs"]["scale"] == "4"
    assert _only(prompt, "GlyphSR_OCRExtract")[1]["inputs"]["image"] == [restore_id, 0]
    apply = _only(prompt, "GlyphSR_ApplyTSControlNet")[1]["inputs"]
    assert apply["image"] == [scale_id, 0] and apply["text_image"] == [restore_id, 0]
    assert isinstance(apply["text_mask"], list)
    assert (apply["beta_text"], apply["beta_scene"]) == (1.0, 0.0)
    loader = _only(prompt, "GlyphSR_TSControlNetLoader")[1]["inputs"]
    assert loader["second_control_net"] == "shared: scene weights"
    assert loader["control_net_name"] in {m["scene_controlnet"] for m in workflow_graphs.MODELS.values()}


def test_restore_workflow_needs_nothing_beyond_the_pack():
    prompt = load(workflow_graphs.API_DIR / "glyphsr_restore_x4.api.json")
    types = sorted(n["class_type"] for n in prompt.values())
    assert types == sorted(["LoadImage", "GlyphSR_TextRestore", "SaveImage", "GlyphSR_OCRExtract", "PreviewImage",
                            "GlyphSR_TextFidelity", "PreviewAny", "MaskToImage", "PreviewImage"])
    load_id, _ = _only(prompt, "LoadImage")
    restore_id, restore = _only(prompt, "GlyphSR_TextRestore")
    assert restore["inputs"]["model"] == "glyphsr_text_restore_x4.safetensors"
    ocr_id, ocr = _only(prompt, "GlyphSR_OCRExtract")
    assert ocr["inputs"]["image"] == [load_id, 0]  # the LQ reading is the reference
    check = _only(prompt, "GlyphSR_TextFidelity")[1]["inputs"]
    assert check["image"] == [restore_id, 0] and check["text"] == [ocr_id, 0]
    assert _only(prompt, "SaveImage")[1]["inputs"]["images"] == [restore_id, 0]


def test_keep_words_workflow_upscales_with_the_users_model_and_keeps_rs_words():
    prompt = load(workflow_graphs.API_DIR / "glyphsr_keep_words.api.json")
    load_id, _ = _only(prompt, "LoadImage")
    restore_id, _ = _only(prompt, "GlyphSR_TextRestore")
    loader_id, loader = _only(prompt, "UpscaleModelLoader")
    upscale_id, upscale = _only(prompt, "ImageUpscaleWithModel")
    ocr_id, ocr = _only(prompt, "GlyphSR_OCRExtract")
    keep_id, keep = _only(prompt, "GlyphSR_KeepWords")
    words_id, _ = _only(prompt, "GlyphSR_ReviewWords")
    assert loader["inputs"]["model_name"] == "RealESRGAN_x4plus.pth"
    assert upscale["inputs"] == {"upscale_model": [loader_id, 0], "image": [load_id, 0]}
    assert ocr["inputs"]["image"] == [restore_id, 0]  # the guidance words are R's
    assert keep["inputs"]["image"] == [upscale_id, 0] and keep["inputs"]["reference"] == [restore_id, 0]
    assert keep["inputs"]["text"] == [words_id, 0] and keep["inputs"]["mode"] == "changed words"
    assert _only(prompt, "SaveImage")[1]["inputs"]["images"] == [keep_id, 0]
    checked = {tuple(n["inputs"]["image"]) for n in prompt.values() if n["class_type"] == "GlyphSR_TextFidelity"}
    assert checked == {(keep_id, 0), (upscale_id, 0)}  # words kept, against the raw upscaler
    ui = load(workflow_graphs.UI_DIR / "glyphsr_keep_words.json")
    (node,) = [n for n in ui["nodes"] if n["type"] == "UpscaleModelLoader"]
    assert node["properties"]["models"] == [{"name": "RealESRGAN_x4plus.pth", "directory": "upscale_models",
                                             "url": workflow_graphs.UPSCALER_URL}]


def test_diffusion_workflows_keep_words_with_the_same_node():
    for name in ("glyphsr_sdxl_x4", "glyphsr_sdxl_x4_tiled", "glyphsr_sd15_x4", "glyphsr_no_vlm"):
        prompt = load(workflow_graphs.API_DIR / f"{name}.api.json")
        restore_id, _ = _only(prompt, "GlyphSR_TextRestore")
        fix_id, _ = _only(prompt, "GlyphSR_ColorFix")
        keep = _only(prompt, "GlyphSR_KeepWords")[1]["inputs"]
        assert keep["image"] == [fix_id, 0] and keep["reference"] == [restore_id, 0] and keep["rounds"] == 2
        assert all(isinstance(keep[k], list) for k in ("model", "vae", "text_positive", "text_negative"))
        assert "GlyphSR_TextGuard" not in {n["class_type"] for n in prompt.values()}


@pytest.mark.parametrize("name", ["glyphsr_sdxl_x4", "glyphsr_sdxl_x4_tiled", "glyphsr_sd15_x4", "glyphsr_no_vlm",
                                  "glyphsr_keep_words"])
def test_words_are_reviewed_right_after_ocr_and_every_later_node_takes_the_reviewed_words(name):
    prompt = load(workflow_graphs.API_DIR / f"{name}.api.json")
    ocr_id, ocr = _only(prompt, "GlyphSR_OCRExtract")
    review_id, review = _only(prompt, "GlyphSR_ReviewWords")
    assert review["inputs"]["text"] == [ocr_id, 0] and review["inputs"]["image"] == ocr["inputs"]["image"]
    # unattended runs go on: the dialog opens only for a browser, never longer than the timeout, nothing stored
    assert (review["inputs"]["review"], review["inputs"]["timeout"], review["inputs"]["corrections"]) == (
        "in the browser", 300, "")
    takes_ocr_text = [k for k, n in prompt.items() if [ocr_id, 0] in n["inputs"].values()]
    assert takes_ocr_text == [review_id]
    assert sum([review_id, 0] in n["inputs"].values() for n in prompt.values()) >= 3
    ui = load(workflow_graphs.UI_DIR / f"{name}.json")
    notes = [n["widgets_values"][0] for n in ui["nodes"] if n["type"] == "Note"]
    assert any("a dialog shows the image" in note and "never wait" in note for note in notes)


def test_workflows_without_diffusion_read_without_a_review():
    for name in ("glyphsr_restore_x4", "glyphsr_ocr_prompts"):
        prompt = load(workflow_graphs.API_DIR / f"{name}.api.json")
        assert "GlyphSR_ReviewWords" not in {n["class_type"] for n in prompt.values()}


def test_core_snapshot_covers_the_core_nodes_used():
    snapshot = node_specs.core_specs()
    assert workflow_graphs.core_node_types() <= set(snapshot), "run tools/snapshot_core_nodes.py"
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


# ---------------------------------------------------------------------------------------------
# readable as saved (the frontend test checks the same in ComfyUI's real frontend)


def _intersects(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.name)
def test_no_node_overlaps_another_or_a_group_title(path):
    ui = load(path)
    areas = drawn_areas(ui)
    ids = sorted(areas)
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            assert not _intersects(areas[a], areas[b]), f"nodes {a} and {b} overlap (title bars and badges included)"
    for group in ui["groups"]:
        x, y, w, _h = group["bounding"]
        title_bar = [x, y, w, workflow_format.GROUP_TITLE_H + 4]
        for node_id, area in areas.items():
            assert not _intersects(title_bar, area), f"node {node_id} covers the title of {group['title']!r}"


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.name)
def test_opens_readable_and_clear_of_the_frontends_panels(path):
    """Zoom 0.6 or more (below it the frontend hides every text) and, at 1920 x 1080, every node and group
    inside the canvas area the sidebar, tab bar, Run toolbar and minimap leave free."""
    ui = load(path)
    assert ui["extra"]["ds"]["scale"] >= 0.6
    left, top, right, bottom = workflow_format.SCREEN_SAFE
    rects = {f"node {k}": v for k, v in drawn_areas(ui).items()}
    rects.update({f"group {g['title']!r}": g["bounding"] for g in ui["groups"]})
    for name, rect in rects.items():
        sl, st, sr, sb = to_screen(ui, rect)
        assert left <= sl and top <= st and sr <= right and sb <= bottom, (name, [round(v) for v in (sl, st, sr, sb)])
        for cl, ct, cr, cb in workflow_format.SCREEN_COVERED:
            assert not (sl < cr and cl < sr and st < cb and ct < sb), (name, "under", (cl, ct, cr, cb))


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.name)
def test_notes_fit_their_text_and_nodes_their_widget_text(path, specs):
    ui = load(path)
    for node in ui["nodes"]:
        if node["type"] == "Note":
            assert node["size"][1] >= workflow_format.note_height(node["widgets_values"][0], node["size"][0])
    ckpt = _node(ui, "CheckpointLoaderSimple") if any(n["type"] == "CheckpointLoaderSimple" for n in ui["nodes"]) \
        else None
    if ckpt is not None:  # 'ckpt_name' + the file name, at ~6.6 px a character, plus the widget's margins
        assert ckpt["size"][0] >= 6.6 * len("ckpt_name" + ckpt["widgets_values"][0]) + 85


@pytest.mark.parametrize("name", NAMES)
def test_templates_browser_has_a_thumbnail_for_each_workflow(name):
    """The frontend shows workflows/<name>.jpg on the card (tools/workflow_thumbnails.py makes them)."""
    from PIL import Image

    path = workflow_graphs.UI_DIR / f"{name}.jpg"
    with Image.open(path) as thumb:
        assert thumb.format == "JPEG" and thumb.size == (640, 480)
        assert thumb.convert("L").getextrema()[1] > 100  # not a blank card
