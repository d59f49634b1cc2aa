"""The Review Words dialog in ComfyUI's own frontend (headless Chromium): a graph with the tiny SD 1.5
model runs from the browser, the dialog shows the OCR words over the image, a word is retyped and a
missing one drawn and typed, Continue; the text prompt CLIP Text Encode receives holds the corrected
words, the node's widget stores the corrections, and the next run's dialog shows them.

Needs Node.js, puppeteer-core (GLYPHSR_NODE_PATH) and Chromium (CHROMIUM); skipped otherwise.
Screenshots go to GLYPHSR_SCREENSHOT_DIR (default: a temporary folder).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from comfy_client import Graph
from test_review_words import sign

HERE = Path(__file__).resolve().parent
NODE_PATH = os.environ.get("GLYPHSR_NODE_PATH", "")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def clip_graph(server, image_name: str, checkpoint: str) -> tuple[dict, str, str]:
    """Sign -> OCR -> Review Words -> Build Prompts -> CLIP Text Encode -> KSampler (1 step) -> preview."""
    g = Graph(server)
    loaded = g.node("LoadImage", image=image_name)
    ocr = g.node("GlyphSR_OCRExtract", image=loaded.out(0))
    review = g.node("GlyphSR_ReviewWords", image=loaded.out(0), text=ocr.out(0), timeout=240)
    prompts = g.node("GlyphSR_BuildPrompts", text=review.out(0), caption="a shop sign", include_locations=False)
    ckpt = g.node("CheckpointLoaderSimple", ckpt_name=checkpoint)
    positive = g.node("CLIPTextEncode", text=prompts.out(2), clip=ckpt.out(1))
    negative = g.node("CLIPTextEncode", text=prompts.out(3), clip=ckpt.out(1))
    latent = g.node("EmptyLatentImage", width=64, height=64, batch_size=1)
    sampled = g.node("KSampler", model=ckpt.out(0), positive=positive.out(0), negative=negative.out(0),
                     latent_image=latent.out(0), seed=0, steps=1, cfg=5.0, sampler_name="euler", scheduler="normal",
                     denoise=1.0)
    decoded = g.node("VAEDecode", samples=sampled.out(0), vae=ckpt.out(2))
    g.node("PreviewImage", images=decoded.out(0))
    shown_prompt = g.node("PreviewAny", source=prompts.out(2))
    return g.prompt(), review.id, shown_prompt.id


def test_dialog_edits_reach_clip_and_stay_in_the_node(comfy_server, tiny_sd15, unique_prefix, tmp_path_factory):
    if not (shutil.which("node") and Path(CHROMIUM).is_file() and (Path(NODE_PATH) / "puppeteer-core").is_dir()):
        pytest.skip("needs node, puppeteer-core in GLYPHSR_NODE_PATH and Chromium (CHROMIUM)")
    shots = Path(os.environ.get("GLYPHSR_SCREENSHOT_DIR") or tmp_path_factory.mktemp("screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    sign(comfy_server.input_dir / f"{unique_prefix}.png")
    prompt, review_id, prompt_id_node = clip_graph(comfy_server, f"{unique_prefix}.png", tiny_sd15)
    prompt_file = tmp_path_factory.mktemp("review") / "prompt.json"
    prompt_file.write_text(json.dumps(prompt), encoding="utf-8")
    proc = subprocess.run(["node", str(HERE / "frontend_review.js"), comfy_server.url, str(shots), str(prompt_file),
                           review_id, "OPEN", "SHUT"],
                          env=dict(os.environ, NODE_PATH=NODE_PATH, CHROMIUM=CHROMIUM),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:] + comfy_server.log_tail(40)
    report = json.loads(proc.stdout)
    first, second = report["runs"]
    assert first["shown"] == ["OPEN", "DAILY"] and first["error"] == ""

    history = comfy_server.history(first["prompt_id"])
    text = history["outputs"][prompt_id_node]["text"][0]
    assert '"SHUT"' in text and '"DAILY"' in text and '"BREAD"' in text and "OPEN" not in text, text
    clip_inputs = [n["inputs"]["text"] for n in history["prompt"][2].values() if n["class_type"] == "CLIPTextEncode"]
    assert prompt[prompt_id_node]["inputs"]["source"] in clip_inputs  # what was shown is what CLIP encoded
    assert any(node_output.get("images") for node_output in history["outputs"].values())  # CLIP and the sampler ran

    stored = json.loads(report["corrections"])
    assert {e["op"] for e in stored["images"][0]["edits"]} == {"change", "add"}
    assert sorted(second["shown"]) == ["BREAD", "DAILY", "SHUT"]  # the next run starts from the stored corrections
    for screenshot in report["screenshots"]:
        assert Path(screenshot).is_file()
