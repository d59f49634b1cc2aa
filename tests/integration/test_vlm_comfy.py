"""The VLM nodes inside a real ComfyUI server: listing, a caption graph, offload by ComfyUI.

The tiny models are built here with transformers (not ComfyUI) and saved into the server's
models/LLM folder, as a user would place a downloaded model.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from comfy_client import ComfyExecutionError, ComfyInterrupted, Graph
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/: the tiny VLM builders
from tiny_vlms import tiny_vlm

HOLDER = "GlyphSRVLM"  # class name ComfyUI logs as "Requested to load GlyphSRVLM"


@pytest.fixture(scope="module")
def vlm_names(comfy_server) -> dict[str, str]:
    root = comfy_server.models_dir / "LLM"
    return {kind: tiny_vlm(kind, root).name for kind in ("llava", "qwen2_vl")}


@pytest.fixture(scope="module")
def input_image(comfy_server) -> str:
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(comfy_server.input_dir / "vlm_in.png")
    return "vlm_in.png"


def _caption_graph(server, model: str, image: str, prompt: str, batch: int = 1, **caption_inputs) -> Graph:
    g = Graph(server)
    loaded = g.node("LoadImage", image=image)
    pixels = loaded.out(0)
    if batch > 1:
        pixels = g.node("RepeatImageBatch", image=pixels, amount=batch).out(0)
    vlm = g.node("GlyphSR_VLMLoader", model=model)
    caption = g.node("GlyphSR_VLMCaption", node_id="caption", vlm=vlm.out(0), image=pixels, prompt=prompt,
                     max_new_tokens=6, **caption_inputs)
    g.node("PreviewAny", node_id="show", source=caption.out(0))
    return g


def _requested_loads(server) -> int:
    return server.log_text().count(f"Requested to load {HOLDER}")


def test_loader_lists_model_folders(comfy_server, vlm_names):
    listed = comfy_server.object_info("GlyphSR_VLMLoader")["input"]["required"]["model"][0]
    assert set(vlm_names.values()) <= set(listed)


@pytest.mark.parametrize("kind", ["llava", "qwen2_vl"])
def test_caption_graph_gives_one_caption_per_image(comfy_server, vlm_names, input_image, kind):
    result = comfy_server.queue(_caption_graph(comfy_server, vlm_names[kind], input_image, f"Describe ({kind}).",
                                               batch=2))
    shown = result.outputs["show"]["text"]
    assert len(shown) == 2 and all(isinstance(text, str) for text in shown)
    assert shown[0] == shown[1], "the same image twice gives the same greedy caption"


def test_model_is_loaded_by_comfy_and_offloaded_when_comfy_frees_memory(comfy_server, vlm_names, input_image):
    model = vlm_names["llava"]
    comfy_server.queue(_caption_graph(comfy_server, model, input_image, "First look."))
    loads = _requested_loads(comfy_server)
    assert loads >= 1 and "full load: True" in comfy_server.log_text()

    # still loaded: a new caption (the loader's output is cached) does not load it again
    comfy_server.queue(_caption_graph(comfy_server, model, input_image, "Second look."))
    assert _requested_loads(comfy_server) == loads

    # ComfyUI's "free memory" unloads every model it manages, ours included ...
    # (free_memory=False keeps the cached loader output, so the same patcher comes back below)
    comfy_server.free(unload_models=True, free_memory=False)
    g = Graph(comfy_server)  # the worker applies the flag at the latest right after its next prompt
    g.node("PreviewAny", source=g.node("PrimitiveString", value="tick").out(0))
    comfy_server.queue(g)

    # ... so the next caption has to load it again
    comfy_server.queue(_caption_graph(comfy_server, model, input_image, "Third look."))
    assert _requested_loads(comfy_server) == loads + 1


def test_bad_input_surfaces_on_the_node(comfy_server, vlm_names, input_image):
    with pytest.raises(ComfyExecutionError) as info:
        comfy_server.queue(_caption_graph(comfy_server, vlm_names["llava"], input_image, "   "))
    assert info.value.node_type == "GlyphSR_VLMCaption"
    assert "prompt is empty" in info.value.exception_message


def test_cancel_stops_a_long_caption(comfy_server, vlm_names, input_image):
    """Greedy decoding of the random tiny model never meets its end token: 4096 tokens take ~10 s
    on 2 CPU cores unless Cancel stops it between tokens."""
    model = vlm_names["qwen2_vl"]
    comfy_server.queue(_caption_graph(comfy_server, model, input_image, "warm up"))  # loaded and cached
    graph = _caption_graph(comfy_server, model, input_image, "Go on and on.")
    graph.nodes["caption"]["inputs"]["max_new_tokens"] = 4096
    timer = threading.Timer(1.0, comfy_server.interrupt)
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(ComfyInterrupted) as info:
            comfy_server.queue(graph, timeout=120)
    finally:
        timer.cancel()
    assert info.value.payload.get("node_type") == "GlyphSR_VLMCaption"
    elapsed = time.monotonic() - started
    assert elapsed < 4.0, f"cancel took {elapsed:.1f} s to stop the caption"
    assert "Processing interrupted" in comfy_server.log_text()
