"""GlyphSR Text Guard in a real ComfyUI server with the tiny random-weight SD1.5 checkpoint.

The tiny model's text is garbage, so the guard must re-sample through ComfyUI's own sampling (a
noise-masked inpaint of the word boxes), find the words still wrong and paste the fallback's
letters: the guarded image must read like the fallback, and every pixel outside the repaired
mask must be the sampler's.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from comfy_client import Graph


def _sign(path) -> None:
    image = Image.new("RGB", (256, 128), (235, 232, 220))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=34)
    draw.text((16, 20), "OPEN", font=font, fill=(20, 20, 20))
    draw.text((130, 70), "DAILY", font=font, fill=(20, 20, 20))
    image.save(path)


def test_guard_brings_tiny_model_garbage_back_to_the_fallback(comfy_server, tiny_sd15, unique_prefix):
    _sign(comfy_server.input_dir / f"{unique_prefix}.png")
    g = Graph(comfy_server)
    loaded = g.node("LoadImage", image=f"{unique_prefix}.png")
    words = g.node("GlyphSR_OCRExtract", image=loaded.out(0))
    ckpt = g.node("CheckpointLoaderSimple", ckpt_name=tiny_sd15)
    positive = g.node("CLIPTextEncode", text='the text "OPEN" "DAILY"', clip=ckpt.out(1))
    negative = g.node("CLIPTextEncode", text="garbled letters", clip=ckpt.out(1))
    latent = g.node("VAEEncode", pixels=loaded.out(0), vae=ckpt.out(2))
    sampled = g.node("KSampler", model=ckpt.out(0), positive=positive.out(0), negative=negative.out(0),
                     latent_image=latent.out(0), seed=1, steps=2, cfg=5.0, sampler_name="euler",
                     scheduler="normal", denoise=1.0)
    output = g.node("VAEDecode", samples=sampled.out(0), vae=ckpt.out(2))
    guard = g.node("GlyphSR_TextGuard", image=output.out(0), fallback=loaded.out(0), text=words.out(0), rounds=1,
                   min_confidence=0.5, dilation=8, model=ckpt.out(0), vae=ckpt.out(2),
                   text_positive=positive.out(0), text_negative=negative.out(0), seed=7, steps=2, cfg=5.0,
                   sampler_name="euler", scheduler="normal", denoise=1.0)
    checks = {}
    for name, image in (("output", output), ("fallback", loaded), ("guarded", guard)):
        check = g.node("GlyphSR_TextFidelity", image=image.out(0), text=words.out(0))
        checks[name] = g.node("PreviewAny", node_id=f"f1_{name}", source=check.out(0))
    g.node("PreviewAny", node_id="report", source=guard.out(1))
    saves = {name: g.node("SaveImage", images=node.out(0), filename_prefix=f"{unique_prefix}_{name}")
             for name, node in (("output", output), ("guarded", guard),
                                ("mask", g.node("MaskToImage", mask=guard.out(2))))}
    result = comfy_server.queue(g)

    f1 = {name: float(result.outputs[f"f1_{name}"]["text"][0]) for name in checks}
    report = result.outputs["report"]["text"][0]
    assert f1["fallback"] == 1.0 and f1["output"] < 1.0, (f1, report)
    assert f1["guarded"] >= max(f1["output"], f1["fallback"]) - 0.01, (f1, report)
    assert "1 re-sample round(s)" in report and ("composited" in report or "resampled" in report), report

    def pixels(name):
        with Image.open(result.files(saves[name].id)[0]) as image:
            return np.asarray(image.convert("RGB")).astype(int)

    before, after, mask = pixels("output"), pixels("guarded"), pixels("mask")[..., 0]
    assert (mask > 0).any() and (before != after).any()
    assert np.array_equal(before[mask == 0], after[mask == 0])


def test_text_guard_is_deprecated_in_favour_of_keep_words_with_the_same_inputs(comfy_server):
    """Saved graphs with the Text Guard still load (the node exists, inputs unchanged); the search offers
    Keep Words, the same mechanism under its new name."""
    guard = comfy_server.object_info("GlyphSR_TextGuard")
    keep = comfy_server.object_info("GlyphSR_KeepWords")
    assert guard["deprecated"] is True and not keep.get("deprecated", False)
    assert list(guard["input"]["required"]) == ["image", "fallback", "text", "rounds", "min_confidence", "dilation"]
    assert keep["display_name"] == "GlyphSR Keep Words"
    assert set(guard["input"]["optional"]) <= set(keep["input"]["optional"])
