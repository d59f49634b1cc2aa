"""The VLM nodes as ComfyUI calls them, against the stand-in comfy modules, on tiny real models."""

from __future__ import annotations

import os

import comfy.model_management as mm
import comfy.model_patcher
import comfy.utils as cu
import folder_paths
import numpy as np
import pytest
import torch
from tiny_vlms import tiny_vlm

from glyphsr_core.types import OcrResult, TextRegion

TOKENS = 4


@pytest.fixture(scope="module")
def vlm_module(pack):
    return pack.nodes.vlm


@pytest.fixture(scope="module")
def model_names(tmp_path_factory, vlm_module):
    """Tiny models placed as users place them: models/LLM/<name>, models/vlm/<group>/<name>."""
    built = tmp_path_factory.getbasetemp() / "models" / "LLM"
    llm = os.path.join(folder_paths.models_dir, "LLM")
    group = os.path.join(folder_paths.models_dir, "vlm", "qwen")
    os.makedirs(llm, exist_ok=True)
    os.makedirs(group, exist_ok=True)
    links = [(tiny_vlm("llava", built), os.path.join(llm, "tiny-llava")),
             (tiny_vlm("qwen2_vl", built), os.path.join(group, "tiny-qwen2-vl"))]
    for source, link in links:
        if not os.path.exists(link):
            os.symlink(source, link)
    os.makedirs(os.path.join(llm, "not-a-model", "sub"), exist_ok=True)  # no config.json anywhere
    return {"llava": "tiny-llava", "qwen2_vl": "qwen/tiny-qwen2-vl"}


@pytest.fixture(scope="module")
def loaded(pack, model_names):
    loader = pack.NODE_CLASS_MAPPINGS["GlyphSR_VLMLoader"]()
    return {kind: loader.load(name, "auto", False)[0] for kind, name in model_names.items()}


def _batch(count: int = 2) -> torch.Tensor:
    rng = np.random.default_rng(3)
    return torch.from_numpy(rng.random((count, 48, 64, 3), dtype=np.float32))


def _caption(pack, vlm, image, **overrides):
    node = pack.NODE_CLASS_MAPPINGS["GlyphSR_VLMCaption"]()
    kwargs = {"prompt": "Describe the scene.", "max_new_tokens": TOKENS, "seed": 0, "temperature": 0.0,
                  "append_ocr_words": False}
    kwargs.update(overrides)
    return node.caption(vlm, image, **kwargs)


def test_nodes_are_registered(pack):
    assert pack.NODE_DISPLAY_NAME_MAPPINGS["GlyphSR_VLMLoader"] == "GlyphSR Load VLM"
    assert pack.NODE_DISPLAY_NAME_MAPPINGS["GlyphSR_VLMCaption"] == "GlyphSR VLM Caption"
    caption = pack.NODE_CLASS_MAPPINGS["GlyphSR_VLMCaption"]
    assert caption.RETURN_TYPES == ("STRING",) and caption.OUTPUT_IS_LIST == (True,)
    inputs = caption.INPUT_TYPES()
    assert inputs["optional"]["text"][0] == "GLYPHSR_TEXT"
    assert inputs["required"]["append_ocr_words"][1]["default"] is False
    loader = pack.NODE_CLASS_MAPPINGS["GlyphSR_VLMLoader"].INPUT_TYPES()["required"]
    assert loader["trust_remote_code"][1]["default"] is False


def test_model_folders_are_registered_with_extensions(vlm_module):
    for key in ("LLM", "vlm"):
        paths, extensions = folder_paths.folder_names_and_paths[key]
        assert os.path.join(folder_paths.models_dir, key) in paths
        assert {".json", ".safetensors"} <= extensions


def test_registration_keeps_paths_from_extra_model_paths(vlm_module):
    saved = dict(folder_paths.folder_names_and_paths)
    try:
        folder_paths.folder_names_and_paths["LLM"] = (["/elsewhere/LLM"], set())  # another pack: "all files"
        folder_paths.folder_names_and_paths["vlm"] = (["/elsewhere/vlm"], {".gguf"})
        vlm_module.register_model_folders()
        llm_paths, llm_ext = folder_paths.folder_names_and_paths["LLM"]
        vlm_paths, vlm_ext = folder_paths.folder_names_and_paths["vlm"]
        assert llm_paths == ["/elsewhere/LLM", os.path.join(folder_paths.models_dir, "LLM")]
        assert llm_ext == set()
        assert vlm_paths[0] == "/elsewhere/vlm" and vlm_ext == {".gguf", ".json", ".safetensors"}
    finally:
        folder_paths.folder_names_and_paths.clear()
        folder_paths.folder_names_and_paths.update(saved)


def test_loader_lists_model_folders_from_both_keys(pack, model_names):
    listed = pack.NODE_CLASS_MAPPINGS["GlyphSR_VLMLoader"].INPUT_TYPES()["required"]["model"][0]
    assert set(model_names.values()) <= set(listed)
    assert not any(name.startswith("not-a-model") for name in listed)


def test_loader_wraps_the_model_in_a_classic_model_patcher(loaded, vlm_module):
    handle = loaded["llava"]
    patcher = handle.patcher
    assert type(patcher) is comfy.model_patcher.ModelPatcher
    assert isinstance(patcher.model, vlm_module.GlyphSRVLM)
    assert patcher.model.hf_model is handle.captioner.model
    assert patcher.model_size() == handle.captioner.weight_bytes()
    assert patcher.load_device == mm.get_torch_device()


def test_unknown_model_name_is_a_clear_error(pack, model_names):
    with pytest.raises(FileNotFoundError, match="not-there"):
        pack.NODE_CLASS_MAPPINGS["GlyphSR_VLMLoader"]().load("not-there", "auto", False)


@pytest.mark.parametrize("kind", ["llava", "qwen2_vl"])
def test_caption_node_loads_through_comfy_and_returns_one_caption_per_image(pack, loaded, kind):
    handle = loaded[kind]
    (captions,) = _caption(pack, handle, _batch(2))
    assert isinstance(captions, list) and len(captions) == 2 and all(isinstance(c, str) for c in captions)
    models, kwargs = mm.load_calls[-1]
    assert models == [handle.patcher] and kwargs["force_full_load"] is True
    assert kwargs["memory_required"] == handle.captioner.inference_bytes(TOKENS)
    assert handle.patcher.moves[-1] == mm.get_torch_device()
    bar = cu.created_bars[-1]
    assert bar.total == 2 * TOKENS and bar.updates[-1] == 2 * TOKENS and len(bar.updates) > 2


def test_caption_node_single_image_gives_a_list_of_one(pack, loaded):
    (captions,) = _caption(pack, loaded["llava"], _batch(1))
    assert len(captions) == 1


def test_interrupt_stops_generation_and_raises_comfy_exception(pack, loaded, monkeypatch):
    ticks = []

    def hook(value, total, preview, node_id=None):
        ticks.append(value)
        if len(ticks) == 2:
            mm.interrupt_current_processing(True)  # the user presses Cancel mid-caption

    monkeypatch.setattr(cu, "PROGRESS_BAR_HOOK", hook)
    with pytest.raises(mm.InterruptProcessingException):
        _caption(pack, loaded["qwen2_vl"], _batch(2), max_new_tokens=64)
    assert len(ticks) == 2, "no token after the cancel"
    assert mm.processing_interrupted() is False, "the flag is consumed like ComfyUI does"


def test_ocr_words_reach_the_prompt_only_when_switched_on(pack, loaded, monkeypatch):
    handle = loaded["llava"]
    seen = []
    original = handle.captioner.caption

    def spy(images, prompts, **kwargs):
        seen.append(list(prompts))
        return original(images, prompts, **kwargs)

    monkeypatch.setattr(handle.captioner, "caption", spy)
    text = [OcrResult(64, 48, (TextRegion("OPEN"),)), OcrResult(64, 48, (TextRegion("SALE"),))]
    _caption(pack, handle, _batch(2), text=text)
    _caption(pack, handle, _batch(2), text=text, append_ocr_words=True)
    assert seen[0] == ["Describe the scene."] * 2
    assert seen[1] == ['Describe the scene. The image contains the words: "OPEN".',
                       'Describe the scene. The image contains the words: "SALE".']


def test_bad_caption_inputs_are_value_errors(pack, loaded):
    handle = loaded["llava"]
    with pytest.raises(ValueError, match="prompt is empty"):
        _caption(pack, handle, _batch(1), prompt="  ")
    with pytest.raises(ValueError, match="3 OCR results for 2 images"):
        _caption(pack, handle, _batch(2), text=[OcrResult(1, 1)] * 3)
    with pytest.raises(ValueError, match="1x1 px"):
        _caption(pack, handle, torch.zeros(1, 1, 1, 3))
