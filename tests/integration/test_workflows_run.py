"""The shipped workflows inside a real ComfyUI: valid against its /object_info, listed in the Templates
browser, and every API workflow runs to completion on tiny models (file names substituted).

`glyphsr_sdxl_x4` runs on the tiny SDXL checkpoint and SDXL ControlNet (tiny_models.py: ComfyUI
detects the checkpoint as SDXL, so sampling goes through SDXL's conditioning: CLIP-L + CLIP-G, pooled
output, size embedding). Gap, stated plainly: the weights are random and the UNet keeps only SDXL's
block pattern at width 320, so this proves the graph runs on an SDXL model with SDXL ControlNets,
not output quality. Every upscale workflow uses the shared text branch (the scene ControlNet's
weights on the restored image); Text Restore runs a bicubic-initialised restorer installed under
the bundled file's name (the test does not depend on the trained weights).
"""

from __future__ import annotations

import copy
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from comfy_client import ComfyExecutionError, Graph
from glyphsr_core.restore import BUNDLED_NAME, save_restorer
from glyphsr_core.restore.compact import CompactSR, init_as_bicubic

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(TESTS.parent / "tools"))
import workflow_graphs  # noqa: E402
from textimages import render_words  # noqa: E402
from tiny_vlms import tiny_vlm  # noqa: E402
from workflow_check import check_api, check_ui  # noqa: E402

NAMES = ["glyphsr_sdxl_x4", "glyphsr_sdxl_x4_tiled", "glyphsr_sd15_x4", "glyphsr_ocr_prompts", "glyphsr_no_vlm",
         "glyphsr_restore_x4", "glyphsr_keep_words"]
LQ_SIZE = (128, 56)  # x4 -> 512 x 224
STEPS = 3


def load_api(name: str) -> dict:
    return json.loads((workflow_graphs.API_DIR / f"{name}.api.json").read_text(encoding="utf-8"))


def nodes_of(prompt: dict, class_type: str) -> list[tuple[str, dict]]:
    return [(k, n) for k, n in prompt.items() if n["class_type"] == class_type]


@pytest.fixture(scope="module")
def live_specs(comfy_server) -> dict:
    return comfy_server.object_info()


@pytest.fixture(scope="module")
def restorer(comfy_server, tmp_path_factory) -> str:
    """A small bicubic-initialised Text Restore model under the bundled file's name in models/upscale_models."""
    net = CompactSR(num_feat=48, num_conv=1, scale=4)
    init_as_bicubic(net)
    path = save_restorer(net, tmp_path_factory.mktemp("restorer") / BUNDLED_NAME)
    return comfy_server.install_model(path, "upscale_models")


@pytest.fixture(scope="module")
def models(comfy_server, tiny_sd15, tiny_controlnet, restorer) -> dict[str, str]:
    """Tiny stand-ins for every model file the workflows name (the shared text branch needs no other)."""
    return {
        "ckpt_name": tiny_sd15,
        "control_net_name": tiny_controlnet,
        "vlm": tiny_vlm("llava", comfy_server.models_dir / "LLM").name,
    }


@pytest.fixture(scope="module")
def sdxl_models(comfy_server, models, tiny_sdxl, tiny_controlnet_sdxl) -> dict[str, str]:
    """`models` with SDXL files: the tiny SDXL checkpoint and its ControlNet (built on first use)."""
    return dict(models, ckpt_name=tiny_sdxl, control_net_name=tiny_controlnet_sdxl)


@pytest.fixture(scope="module")
def images(comfy_server) -> dict[str, str]:
    """LQ inputs: a sign with words, a blank page, and the sign as RGBA with transparent margins."""
    sign, _ = render_words([["OPEN", "NOW"]], size=LQ_SIZE, font_size=22, origin=(6, 14))
    sign.save(comfy_server.input_dir / "wf_sign.png")
    Image.new("RGB", LQ_SIZE, (200, 190, 170)).save(comfy_server.input_dir / "wf_blank.png")
    rgba = sign.convert("RGBA")
    alpha = np.full(LQ_SIZE[::-1], 255, np.uint8)
    alpha[:, :4] = 0
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(comfy_server.input_dir / "wf_rgba.png")
    return {"sign": "wf_sign.png", "blank": "wf_blank.png", "rgba": "wf_rgba.png"}


def prepared(name: str, models: dict, image: str) -> dict:
    """The API workflow with tiny model files, the test image and few steps/tokens."""
    prompt = copy.deepcopy(load_api(name))
    for node in prompt.values():
        inputs = node["inputs"]
        for key, value in models.items():
            if key in inputs and not isinstance(inputs[key], list) and node["class_type"] != "GlyphSR_BuildPrompts":
                inputs[key] = value
        if node["class_type"] == "GlyphSR_VLMLoader":
            inputs["model"] = models["vlm"]
        if node["class_type"] == "LoadImage":
            inputs["image"] = image
        if node["class_type"] in ("GlyphSR_PingPongKSampler", "GlyphSR_TiledPingPongKSampler", "GlyphSR_KeepWords"):
            inputs["steps"] = STEPS
        if node["class_type"] == "GlyphSR_VLMCaption":
            inputs["max_new_tokens"] = 8
    return prompt


def shown_text(result, prompt: dict, title: str) -> list[str]:
    node_id = next(k for k, n in prompt.items() if n["_meta"]["title"] == title)
    return result.outputs[node_id]["text"]


@pytest.mark.parametrize("name", NAMES)
def test_workflows_are_valid_for_the_running_comfyui(name, live_specs):
    """The offline checks again, with the live server's specs (real sampler lists, every node)."""
    ui = json.loads((workflow_graphs.UI_DIR / f"{name}.json").read_text(encoding="utf-8"))
    assert check_ui(ui, live_specs) == []
    assert check_api(load_api(name), live_specs) == []


def test_templates_browser_lists_the_ui_workflows(comfy_server):
    templates = comfy_server.get("/workflow_templates")
    assert sorted(templates.get("ComfyUI-GlyphSR", [])) == sorted(NAMES)
    served = comfy_server.get("/api/workflow_templates/ComfyUI-GlyphSR/glyphsr_sd15_x4.json")
    assert served["version"] == 0.4 and served["nodes"]


@pytest.mark.parametrize("name", ["glyphsr_sd15_x4", "glyphsr_no_vlm", "glyphsr_sdxl_x4"])
def test_upscale_workflow_runs_to_a_saved_x4_image(name, comfy_server, models, images, request):
    if name == "glyphsr_sdxl_x4":
        models = request.getfixturevalue("sdxl_models")
    prompt = prepared(name, models, images["sign"])
    result = comfy_server.queue(prompt)
    save_id, _ = nodes_of(prompt, "SaveImage")[0]
    files = result.files(save_id)
    assert len(files) == 1
    with Image.open(files[0]) as saved:
        assert saved.size == (LQ_SIZE[0] * 4, LQ_SIZE[1] * 4)
        assert json.loads(saved.text["prompt"])[save_id]["class_type"] == "SaveImage"
    report = shown_text(result, prompt, "Text fidelity report")[0]
    assert report.startswith("word F1 ") and "2 guidance words" in report
    # random tiny weights draw no letters: the guard repairs toward R and never ends below where it began
    guard = re.match(r"word F1 (\d\.\d+) -> (\d\.\d+)", shown_text(result, prompt, "Keep Words report")[0])
    assert guard and float(guard[2]) >= float(guard[1])
    assert float(report.split()[2].rstrip(";")) == pytest.approx(float(guard[2]), abs=0.01)
    prompts_report = shown_text(result, prompt, "Prompt report")[0]
    assert prompts_report.startswith("2 word(s) in the text prompt")


def test_tiled_workflow_samples_in_tiles_with_each_tiles_words(comfy_server, sdxl_models, images):
    prompt = prepared("glyphsr_sdxl_x4_tiled", sdxl_models, images["sign"])
    # the 512 x 224 output fits one 1024 px tile: smaller tiles so that this run really tiles
    for class_type in ("GlyphSR_TilePrompts", "GlyphSR_TiledPingPongKSampler"):
        for _, node in nodes_of(prompt, class_type):
            node["inputs"].update(tile_size=256, tile_overlap=64)
    for class_type in ("VAEEncodeTiled", "VAEDecodeTiled"):
        for _, node in nodes_of(prompt, class_type):
            node["inputs"].update(tile_size=256, overlap=64)
    result = comfy_server.queue(prompt)
    save_id, _ = nodes_of(prompt, "SaveImage")[0]
    with Image.open(result.files(save_id)[0]) as saved:
        assert saved.size == (LQ_SIZE[0] * 4, LQ_SIZE[1] * 4)
    words = shown_text(result, prompt, "Words per tile")[0]
    assert words.startswith("1x3 tile(s) of 28x32 latent px over 28x64"), words
    # each tile names the words inside it: together all of them, but not every tile the same ones
    per_tile = [set(line.split(": ", 1)[1].split(", ")) - {"-"} for line in words.splitlines()[1:]]
    assert len(per_tile) == 3 and set().union(*per_tile) == {"OPEN", "NOW"}, words
    assert len({frozenset(w) for w in per_tile}) > 1, words


def test_restore_workflow_saves_r_and_checks_it_against_the_lq_words(comfy_server, models, images):
    prompt = prepared("glyphsr_restore_x4", models, images["sign"])
    result = comfy_server.queue(prompt)
    save_id, _ = nodes_of(prompt, "SaveImage")[0]
    with Image.open(result.files(save_id)[0]) as saved:
        assert saved.size == (LQ_SIZE[0] * 4, LQ_SIZE[1] * 4)
    report = shown_text(result, prompt, "Text fidelity report")[0]
    assert report.startswith("word F1 ") and "2 guidance words" in report


@pytest.fixture(scope="module")
def letter_eater(comfy_server, tmp_path_factory) -> str:
    """A .pth upscaler under the linked name that sharpens small letters into shapes that are not
    letters (a compact net with an over-driven last layer), as ComfyUI's Load Upscale Model reads it."""
    import torch

    torch.manual_seed(0)
    net = CompactSR(num_feat=16, num_conv=2, scale=4)
    with torch.no_grad():
        net.body[-1].weight.mul_(40.0)
    path = tmp_path_factory.mktemp("upscaler") / workflow_graphs.UPSCALER
    torch.save(net.state_dict(), path)
    return comfy_server.install_model(path, "upscale_models")


def test_keep_words_workflow_keeps_the_upscalers_picture_and_restores_the_words(comfy_server, models, images,
                                                                                 letter_eater):
    prompt = prepared("glyphsr_keep_words", models, images["sign"])
    loader = nodes_of(prompt, "UpscaleModelLoader")[0][1]
    assert loader["inputs"]["model_name"] == letter_eater
    result = comfy_server.queue(prompt)
    save_id, _ = nodes_of(prompt, "SaveImage")[0]
    with Image.open(result.files(save_id)[0]) as saved:
        assert saved.size == (LQ_SIZE[0] * 4, LQ_SIZE[1] * 4)
    kept = shown_text(result, prompt, "Keep Words report")[0]
    before, after = map(float, re.match(r"word F1 (\d\.\d+) -> (\d\.\d+)", kept).groups())
    raw = float(shown_text(result, prompt, "Raw upscaler report")[0].split()[2].rstrip(";"))
    final = float(shown_text(result, prompt, "Words kept report")[0].split()[2].rstrip(";"))
    assert before == pytest.approx(raw, abs=0.01) and before < 1.0  # the upscaler lost words
    assert after == 1.0 and final == pytest.approx(after, abs=0.01), kept  # all of R's words are back
    assert "composited (" in kept


def test_keep_words_guidance_words_mode_validates_and_repairs_the_guidance_words(comfy_server, models, images,
                                                                                letter_eater):
    """The third `mode` value passes real ComfyUI's combo validation and puts the lost words back."""
    prompt = prepared("glyphsr_keep_words", models, images["sign"])
    nodes_of(prompt, "GlyphSR_KeepWords")[0][1]["inputs"]["mode"] = "guidance words"
    result = comfy_server.queue(prompt)
    kept = shown_text(result, prompt, "Keep Words report")[0]
    before, after = map(float, re.match(r"word F1 (\d\.\d+) -> (\d\.\d+)", kept).groups())
    assert before < 1.0 and after == 1.0 and "composited (" in kept, kept


def test_ocr_prompts_workflow_shows_what_the_method_will_ask_for(comfy_server, models, images):
    prompt = prepared("glyphsr_ocr_prompts", models, images["sign"])
    result = comfy_server.queue(prompt)
    ocr_json = json.loads(shown_text(result, prompt, "OCR JSON")[0])
    assert [r["text"] for r in ocr_json[0]["regions"]] == ["OPEN", "NOW"]
    text_prompt = shown_text(result, prompt, "Text positive")[0]
    assert '"OPEN"' in text_prompt and '"NOW"' in text_prompt
    glyph_id = next(k for k, n in prompt.items() if n["_meta"]["title"] == "Glyph map")
    with Image.open(result.files(glyph_id)[0]) as glyph:
        assert glyph.size == (LQ_SIZE[0] * 4, LQ_SIZE[1] * 4)
        assert np.asarray(glyph.convert("L")).max() == 255


def _fidelity_graph(server, image: str, with_text: bool) -> Graph:
    g = Graph(server)
    loaded = g.node("LoadImage", image=image)
    check = g.node("GlyphSR_TextFidelity", node_id="check", image=loaded.out(0))
    if with_text:
        check.set(text=g.node("GlyphSR_OCRExtract", image=loaded.out(0)).out(0))
    else:
        check.set(input_image=loaded.out(0))
    g.node("PreviewAny", node_id="f1", source=check.out(0))
    g.node("PreviewAny", node_id="report", source=check.out(1))
    return g


@pytest.mark.parametrize("with_text", [True, False], ids=["ocr-text", "input-image"])
def test_fidelity_of_an_image_against_its_own_ocr_is_one(comfy_server, images, with_text):
    result = comfy_server.queue(_fidelity_graph(comfy_server, images["sign"], with_text))
    assert float(result.outputs["f1"]["text"][0]) == 1.0
    report = result.outputs["report"]["text"][0]
    assert '"open": kept' in report and '"now": kept' in report


# ---------------------------------------------------------------------------------------------
# bad input: a message the user can act on


def test_missing_model_file_is_named_on_its_node(comfy_server, models, images):
    """ComfyUI runs the outputs that do not need the missing file (OCR preview, prompt report) and
    returns the loader's error, with the folders it looked in, in node_errors (shown on that node)."""
    prompt = prepared("glyphsr_sd15_x4", models, images["sign"])
    loader_id, loader = nodes_of(prompt, "GlyphSR_TSControlNetLoader")[0]
    loader["inputs"]["control_net_name"] = "glyphsr_text_sd15.safetensors"
    answer = comfy_server.post("/prompt", {"prompt": prompt, "client_id": comfy_server.client_id})
    errors = answer["node_errors"][loader_id]["errors"]
    assert errors[0]["type"] == "custom_validation_failed"
    assert "control_net_name 'glyphsr_text_sd15.safetensors' is not in the controlnet folder (looked in: " \
        in errors[0]["details"]
    assert str(comfy_server.models_dir / "controlnet") in errors[0]["details"]
    deadline = time.monotonic() + 300
    while comfy_server.history(answer["prompt_id"]) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    save_id, _ = nodes_of(prompt, "SaveImage")[0]
    assert save_id not in comfy_server.history(answer["prompt_id"])["outputs"]


def test_image_without_text_runs_and_says_so(comfy_server, models, images):
    prompt = prepared("glyphsr_no_vlm", models, images["blank"])
    result = comfy_server.queue(prompt)
    report = shown_text(result, prompt, "Text fidelity report")[0]
    assert "0 guidance words" in report
    save_id, _ = nodes_of(prompt, "SaveImage")[0]
    assert len(result.files(save_id)) == 1


def test_rgba_input_runs(comfy_server, models, images):
    """An RGBA PNG through Load Image, and a 4-channel IMAGE (Join Image with Alpha) fed to every node."""
    prompt = prepared("glyphsr_no_vlm", models, images["rgba"])
    result = comfy_server.queue(prompt)
    assert "2 guidance words" in shown_text(result, prompt, "Text fidelity report")[0]

    load_id, _ = nodes_of(prompt, "LoadImage")[0]
    for node in prompt.values():
        for key, value in node["inputs"].items():
            if value == [load_id, 0]:
                node["inputs"][key] = ["rgba", 0]
    prompt["rgba"] = {"class_type": "JoinImageWithAlpha", "inputs": {"image": [load_id, 0], "alpha": [load_id, 1]}}
    result = comfy_server.queue(prompt)
    assert "2 guidance words" in shown_text(result, prompt, "Text fidelity report")[0]
    save_id, _ = nodes_of(prompt, "SaveImage")[0]
    with Image.open(result.files(save_id)[0]) as saved:
        assert saved.size == (LQ_SIZE[0] * 4, LQ_SIZE[1] * 4)


def test_fidelity_without_guidance_fails_on_the_node_with_what_to_connect(comfy_server, images):
    g = Graph(comfy_server)
    loaded = g.node("LoadImage", image=images["sign"])
    check = g.node("GlyphSR_TextFidelity", node_id="check", image=loaded.out(0))
    g.node("PreviewAny", source=check.out(0))
    with pytest.raises(ComfyExecutionError) as err:
        comfy_server.queue(g)
    assert err.value.node_id == "check"
    assert "connect 'text'" in err.value.exception_message and "input_image" in err.value.exception_message
