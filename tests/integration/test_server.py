"""The pack inside a real ComfyUI server: it loads, its nodes are listed as declared, graphs run."""

from __future__ import annotations

import json

import pytest
from PIL import Image, ImageDraw, ImageFont

from comfy_client import PACK_DIR_NAME, REPO_ROOT, Graph
import tiny_models

WORDS = ["OPEN", "DAILY", "COFFEE"]

# Runs in ComfyUI's interpreter: import the pack the way ComfyUI does, print what it declares.
_DECLARED_NODES_SCRIPT = r"""
import importlib.util, json
root = sys.argv[1]
spec = importlib.util.spec_from_file_location("glyphsr_pack_check", os.path.join(root, "__init__.py"),
                                              submodule_search_locations=[root])
pack = importlib.util.module_from_spec(spec); sys.modules[spec.name] = pack; spec.loader.exec_module(pack)
out = {}
for node_id, cls in pack.NODE_CLASS_MAPPINGS.items():
    inputs = cls.INPUT_TYPES()
    out[node_id] = {"required": list(inputs.get("required", {})), "optional": list(inputs.get("optional", {})),
                    "output": list(cls.RETURN_TYPES),
                    "output_name": list(getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES),
                    "display_name": pack.NODE_DISPLAY_NAME_MAPPINGS.get(node_id)}
print("@@" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def declared_nodes(comfy_server) -> dict:
    proc = tiny_models.run_comfy_python(_DECLARED_NODES_SCRIPT, str(REPO_ROOT),
                                        comfyui_dir=comfy_server.comfyui_dir, timeout=300)
    line = [x for x in proc.stdout.splitlines() if x.startswith("@@")][-1]
    nodes = json.loads(line[2:])
    assert nodes, "the pack declares no nodes"
    return nodes


def test_pack_imports_without_errors(comfy_server):
    log = comfy_server.log_text()
    pack_lines = [line for line in log.splitlines() if PACK_DIR_NAME in line]
    assert pack_lines, f"ComfyUI never mentioned {PACK_DIR_NAME}:\n{comfy_server.log_tail()}"
    bad = [line for line in pack_lines if "IMPORT FAILED" in line or "Cannot import" in line]
    assert not bad, "\n".join(bad) + "\n" + comfy_server.log_tail()


def test_object_info_lists_every_declared_node(comfy_server, declared_nodes):
    info = comfy_server.object_info()
    missing = sorted(set(declared_nodes) - set(info))
    assert not missing, f"nodes declared by the pack but not served by ComfyUI: {missing}"
    for node_id, declared in declared_nodes.items():
        served = info[node_id]
        assert node_id.startswith("GlyphSR_")
        assert served["category"] == "GlyphSR"
        assert served["display_name"] == declared["display_name"]
        assert list(served["input"].get("required", {})) == declared["required"], node_id
        assert list(served["input"].get("optional", {})) == declared["optional"], node_id
        assert served["output"] == declared["output"], node_id
        assert served["output_name"] == declared["output_name"], node_id


def test_models_added_after_start_are_listed(comfy_server, tmp_path):
    """ComfyUI caches folder listings; a file dropped in later must still show up."""
    before = comfy_server.object_info("CheckpointLoaderSimple")["input"]["required"]["ckpt_name"][0]
    src = tmp_path / "late_addition.safetensors"
    src.write_bytes(b"not a real model")
    name = comfy_server.install_model(src, "checkpoints")
    after = comfy_server.object_info("CheckpointLoaderSimple")["input"]["required"]["ckpt_name"][0]
    assert name not in before and name in after
    (comfy_server.models_dir / "checkpoints" / name).unlink()


def _words_image(path, size=(600, 192)):
    image = Image.new("RGB", size, (236, 232, 220))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=44)
    x = 20
    for i, word in enumerate(WORDS):
        draw.text((x, 24 + 64 * (i % 2)), word, font=font, fill=(20, 20, 20))
        x += int(draw.textlength(word, font=font)) + 24
    image.save(path)
    return image


def test_ocr_prompt_glyph_graph_runs(comfy_server, unique_prefix):
    _words_image(comfy_server.input_dir / "glyphsr_words.png")
    g = Graph(comfy_server)
    load = g.node("LoadImage", image="glyphsr_words.png")
    ocr = g.node("GlyphSR_OCRExtract", image=load.out(0))
    prompts = g.node("GlyphSR_BuildPrompts", caption="a shop sign", text=ocr.out(0))
    glyph = g.node("GlyphSR_GlyphRender", text=ocr.out(0), width=256, height=128)
    save = g.node("SaveImage", images=glyph.out(0), filename_prefix=unique_prefix)
    g.node("PreviewImage", images=ocr.out(3))
    show_json = g.node("PreviewAny", source=ocr.out(1))
    show_text_prompt = g.node("PreviewAny", source=prompts.out(2))

    result = comfy_server.queue(g)

    files = result.files(save.id)
    assert len(files) == 1 and files[0].is_file()
    with Image.open(files[0]) as saved:
        assert saved.size == (256, 128)
        assert saved.convert("L").getextrema()[1] > 128, "glyph map has no white glyphs"
    ocr_json = json.loads(result.outputs[show_json.id]["text"][0])
    read = " ".join(json.dumps(ocr_json).upper().split())
    text_prompt = result.outputs[show_text_prompt.id]["text"][0]
    for word in WORDS:
        assert word in read, f"OCR missed {word}: {read[:500]}"
        assert word in text_prompt, f"text prompt lacks {word}: {text_prompt}"


def test_node_error_surfaces_with_node_id(comfy_server):
    from comfy_client import ComfyExecutionError

    g = Graph(comfy_server)
    bad = g.node("GlyphSR_TextFromString", text="{not json")
    glyph = g.node("GlyphSR_GlyphRender", text=bad.out(0), width=64, height=64)
    g.node("PreviewImage", images=glyph.out(0))
    with pytest.raises(ComfyExecutionError) as err:
        comfy_server.queue(g)
    assert err.value.node_id in (bad.id, glyph.id)
    assert err.value.node_type.startswith("GlyphSR_")
    assert err.value.exception_message


def _sd15_controlnet_graph(server, ckpt, controlnet, strength, prefix, size=64):
    hint = server.input_dir / "glyphsr_hint.png"
    if not hint.exists():
        _words_image(hint, size=(size, size))
    g = Graph(server)
    model = g.node("CheckpointLoaderSimple", ckpt_name=ckpt)
    pos = g.node("CLIPTextEncode", text="a shop sign that says OPEN", clip=model.out(1))
    neg = g.node("CLIPTextEncode", text="blurry", clip=model.out(1))
    cnet = g.node("ControlNetLoader", control_net_name=controlnet)
    image = g.node("LoadImage", image=hint.name)
    applied = g.node("ControlNetApplyAdvanced", positive=pos.out(0), negative=neg.out(0),
                     control_net=cnet.out(0), image=image.out(0), strength=strength,
                     start_percent=0.0, end_percent=1.0)
    latent = g.node("EmptyLatentImage", width=size, height=size, batch_size=1)
    sampled = g.node("KSampler", model=model.out(0), positive=applied.out(0), negative=applied.out(1),
                     latent_image=latent.out(0), seed=7, steps=3, cfg=4.0, sampler_name="euler",
                     scheduler="normal", denoise=1.0)
    decoded = g.node("VAEDecode", samples=sampled.out(0), vae=model.out(2))
    save = g.node("SaveImage", images=decoded.out(0), filename_prefix=prefix)
    return g, save


def test_tiny_sd15_with_controlnet_samples(comfy_server, tiny_sd15, tiny_controlnet, unique_prefix):
    import numpy as np

    outputs = []
    for strength in (0.0, 1.0):
        g, save = _sd15_controlnet_graph(comfy_server, tiny_sd15, tiny_controlnet, strength,
                                         f"{unique_prefix}_s{strength}")
        files = comfy_server.queue(g).files(save.id)
        assert len(files) == 1
        with Image.open(files[0]) as im:
            assert im.size == (64, 64)
            outputs.append(np.asarray(im.convert("RGB"), dtype=np.float32))
    assert np.isfinite(outputs[1]).all() and outputs[1].std() > 0
    assert np.abs(outputs[0] - outputs[1]).mean() > 3.0, "the tiny ControlNet did not change the result"


def test_invalid_prompt_is_rejected_with_details(comfy_server):
    from comfy_client import ComfyPromptError

    g = Graph(comfy_server)
    g.node("GlyphSR_GlyphRender", text=["99", 0], width=64, height=64)
    g.node("GlyphSR_NoSuchNode")
    with pytest.raises(ComfyPromptError) as err:
        comfy_server.queue(g, websocket=False)
    assert "GlyphSR_NoSuchNode" in str(err.value)


def test_tiny_glyph_controlnet_loads_with_six_hint_channels(comfy_server, tiny_controlnet_glyph):
    """The LQ+glyph variant loads through ComfyUI's ControlNetLoader with a 6-channel hint."""
    code = (
        "import comfy.controlnet\n"
        "c = comfy.controlnet.load_controlnet(sys.argv[1])\n"
        "print('@@', c.control_model.input_hint_block[0].weight.shape[1])\n"
    )
    path = comfy_server.models_dir / "controlnet" / tiny_controlnet_glyph
    proc = tiny_models.run_comfy_python(code, str(path), comfyui_dir=comfy_server.comfyui_dir)
    assert "@@ 6" in proc.stdout
    assert tiny_controlnet_glyph in comfy_server.object_info("ControlNetLoader")["input"]["required"][
        "control_net_name"][0]


def test_interrupt_stops_a_running_prompt(comfy_server, tiny_sd15, unique_prefix):
    """A long sampler run is cut short by POST /interrupt and reported as ComfyInterrupted."""
    g = Graph(comfy_server)
    model = g.node("CheckpointLoaderSimple", ckpt_name=tiny_sd15)
    cond = g.node("CLIPTextEncode", text="x", clip=model.out(1))
    latent = g.node("EmptyLatentImage", width=64, height=64, batch_size=1)
    sampled = g.node("KSampler", model=model.out(0), positive=cond.out(0), negative=cond.out(0),
                     latent_image=latent.out(0), seed=1, steps=2000, cfg=1.0, sampler_name="euler",
                     scheduler="normal", denoise=1.0)
    g.node("SaveImage", images=g.node("VAEDecode", samples=sampled.out(0), vae=model.out(2)).out(0),
           filename_prefix=unique_prefix)
    err, seconds = comfy_server.queue_cancelled_at_first_progress(g)
    assert seconds < 120
    assert err.node_type == "KSampler"
