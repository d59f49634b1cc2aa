"""The shipped workflows, described once; writes workflows/<name>.json (UI) and workflows/api/<name>.api.json.

    python tools/workflow_graphs.py          # rewrite every workflow file
    python tools/workflow_graphs.py --check  # exit 1 when a file differs from its description

tests/test_workflows.py regenerates them and fails when the committed files drift.
ComfyUI serves `workflows/*.json` in its Templates browser (Workflow > Browse Templates, under the
pack's folder name); API twins live one folder down so the browser does not list them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glyphsr_core import defaults as d  # noqa: E402  (the nodes' and the CLI's defaults)
from workflow_format import Flow, to_api, to_ui  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
UI_DIR = REPO_ROOT / "workflows"
API_DIR = UI_DIR / "api"

#: model files the workflows name, with the public download each is linked to (properties.models, so
#: ComfyUI's Missing Models dialog offers them); the README and docs/workflows.md tell users where each goes
MODELS = {
    "sdxl": {"checkpoint": "sd_xl_base_1.0.safetensors", "text_branch": "glyphsr_text_sdxl.safetensors",
             "scene_controlnet": "xinsir-controlnet-tile-sdxl-1.0.safetensors", "lq_scale": 4.0, "label": "SDXL",
             "checkpoint_url": "https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0/resolve/main/"
                               "sd_xl_base_1.0.safetensors?download=true",
             "scene_controlnet_url": "https://huggingface.co/xinsir/controlnet-tile-sdxl-1.0/resolve/main/"
                                     "diffusion_pytorch_model.safetensors?download=true"},
    "sd15": {"checkpoint": "v1-5-pruned-emaonly-fp16.safetensors", "text_branch": "glyphsr_text_sd15.safetensors",
             "scene_controlnet": "control_v11f1e_sd15_tile_fp16.safetensors", "lq_scale": 4.0, "label": "SD 1.5",
             "checkpoint_url": "https://huggingface.co/Comfy-Org/stable-diffusion-v1-5-archive/resolve/main/"
                               "v1-5-pruned-emaonly-fp16.safetensors?download=true",
             "scene_controlnet_url": "https://huggingface.co/comfyanonymous/ControlNet-v1-1_fp16_safetensors/"
                                     "resolve/main/control_v11f1e_sd15_tile_fp16.safetensors?download=true"},
}
RESTORER = "glyphsr_text_restore_x4.safetensors"  # bundled with the pack (models/upscale_models)
#: the upscaler glyphsr_keep_words starts with: the most used one, published where ComfyUI's Missing
#: Models dialog downloads it (its frontend allows this .pth by name)
UPSCALER = "RealESRGAN_x4plus.pth"
UPSCALER_URL = "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth"
SHARED = "shared: scene weights"  # Load TS-ControlNet's second_control_net choice
VLM_FOLDER = "Qwen2.5-VL-3B-Instruct"
VLM_REPO = "Qwen/Qwen2.5-VL-3B-Instruct"
INPUT_IMAGE = "example.png"
HAND_CAPTION = "a shop front on a city street in daylight, a painted sign above the door"
#: tiled workflow: SDXL's native size, a least overlap of 1/8 tile (image pixels)
TILE_SIZE, TILE_OVERLAP = d.SAMPLE_TILE, d.SAMPLE_BLEND_OVERLAP


def _group(flow: Flow, title: str, note: str, column: int, row: int = 0) -> str:
    """A group numbered in the order the user follows (workflows without a VLM skip no number)."""
    return flow.group(f"{len(flow.groups) + 1}. {title}", note, column, row)


def _named(flow: Flow, title: str) -> str:
    return next(g.title for g in flow.groups if g.title.split(". ", 1)[1] == title)


def _load(flow: Flow, models: dict, upscale: bool = True, r_use: str = "OCR reads R and the text branch sees it.") -> tuple:
    note = ("Pick the low-quality image. Text Restore (stage 1, bundled with the pack, no download) enlarges it "
            f"x4 with a small text-aware network: R, whose letters are sharper. {r_use}")
    if upscale:
        note += " 'Upscale Image By' gives the plain x4 image the scene branch sees, as in the paper."
    g = _group(flow, "Load and restore", note, 0)
    image = flow.add("LoadImage", g, image=INPUT_IMAGE)
    restored = flow.add("GlyphSR_TextRestore", g, title="Text Restore (R)", image=image[0], model=RESTORER,
                        scale="4", tile_size=d.RESTORE_TILE, tile_overlap=d.RESTORE_CONTEXT_MARGIN)
    upscaled = flow.add("ImageScaleBy", g, title="Upscale to the target size", image=image[0],
                        upscale_method="lanczos", scale_by=models["lq_scale"]) if upscale else None
    return image, restored, upscaled


REVIEW_NOTE = ("Run from this browser, a dialog shows the image with the word boxes: retype a wrong word, delete "
               "one, or drag a box and type a missing word, then Continue. Corrections are stored in the node "
               "(saved with the workflow) and applied to later runs. API and headless runs never wait: they use "
               "the stored corrections.")


def _read(flow: Flow, image, what: str = "the restored image R", review_at: tuple[int, int] | None = None) -> dict:
    """OCR Extract, and with `review_at` (column, row) Review Words right after it in its own group; returns
    the outputs later nodes use (the reviewed words where there is a review)."""
    if review_at is not None:
        fix = "Wrong words? Correct them in Review Words (next group)."
    else:
        fix = ("Check the preview: if a word is wrong, copy 'json' into 'GlyphSR Text From String', fix it and "
               "connect that node's text instead.")
    g = _group(flow, "Read the text (OCR)",
               f"RapidOCR reads the words of {what}, offline. {fix} Raise ocr_scale for very small text.", 1)
    ocr = flow.add("GlyphSR_OCRExtract", g, image=image[0], min_confidence=d.MIN_CONFIDENCE, ocr_scale="auto", mask_dilation=4,
                   word_filter="standard")
    flow.add("PreviewImage", g, title="What OCR read", images=ocr["preview"])
    if review_at is None:
        return {"text": ocr["text"], "json": ocr["json"]}
    g = _group(flow, "Review the words", REVIEW_NOTE, *review_at)
    reviewed = flow.add("GlyphSR_ReviewWords", g, image=image[0], text=ocr["text"], review="in the browser",
                        timeout=300, corrections="")
    return {"text": reviewed["text"], "json": ocr["json"]}


def _caption(flow: Flow, image, ocr, column: int = 1, row: int = 1):
    g = _group(flow, "Caption (VLM)",
                   f"A local vision-language model writes the scene caption. It is a folder, not one file, so "
                   f"the Missing Models dialog cannot fetch it: download every file of huggingface.co/{VLM_REPO} "
                   f"into models/LLM/{VLM_FOLDER} (e.g. 'huggingface-cli download {VLM_REPO} --local-dir "
                   f"models/LLM/{VLM_FOLDER}'). No VLM? The glyphsr_no_vlm workflow needs nothing more: you "
                   f"type the caption.", column, row=row)
    vlm = flow.add("GlyphSR_VLMLoader", g, model=VLM_FOLDER, precision="auto", trust_remote_code=False)
    return flow.add("GlyphSR_VLMCaption", g, vlm=vlm["vlm"], image=image[0], text=ocr["text"],
                    max_new_tokens=256, seed=0, temperature=0.0, append_ocr_words=False)


def _prompts(flow: Flow, ocr, caption):
    g = _group(flow, "Build prompts",
                   "Two prompt pairs: the scene pair (caption + quality words) and the text pair (the words and "
                   "where they are, then the caption). Edit the suffixes and negatives here; the report says "
                   "which words did not fit into CLIP's 77 tokens.", 2)
    caption_input = {"caption": caption["caption"]} if caption is not None else {"caption": HAND_CAPTION}
    prompts = flow.add("GlyphSR_BuildPrompts", g, text=ocr["text"], max_words=d.MAX_WORDS, include_locations=True,
                       **caption_input)
    flow.add("PreviewAny", g, title="Prompt report", source=prompts["report"])
    return prompts


def _diffuse(flow: Flow, models: dict, restored, upscaled, ocr, prompts, tiled: bool = False,
             caption=None) -> None:
    g = _group(flow, "Models",
                   f"The {models['label']} checkpoint and the public {models['label']} tile ControlNet are linked: "
                   f"the Missing Models dialog downloads them into models/checkpoints and models/controlnet. "
                   f"The text branch needs no file: '{SHARED}' runs the tile ControlNet's weights (loaded once) "
                   f"on R. Upgrade: a trained text branch ('python -m glyphsr_core train') as second_control_net.",
                   0, row=1)
    ckpt = flow.add("CheckpointLoaderSimple", g, ckpt_name=models["checkpoint"],
                    models=[{"name": models["checkpoint"], "url": models["checkpoint_url"], "directory": "checkpoints"}])
    ts = flow.add("GlyphSR_TSControlNetLoader", g, control_net_name=models["scene_controlnet"],
                  second_control_net=SHARED, beta=-1.0,
                  models=[{"name": models["scene_controlnet"], "url": models["scene_controlnet_url"],
                           "directory": "controlnet"}])

    g = _group(flow, "Encode prompts",
                   "CLIP Text Encode turns each prompt into conditioning: scene +/- and text +/-.", 3)
    conds = {}
    for name, title in (("scene_positive", "Scene prompt"), ("scene_negative", "Scene negative"),
                        ("text_positive", "Text prompt"), ("text_negative", "Text negative")):
        conds[name] = flow.add("CLIPTextEncode", g, title=title, text=prompts[name], clip=ckpt["CLIP"])

    g = _group(flow, "TS-ControlNet",
                   "The scene branch sees the upscaled image (image), the text branch R (text_image). Inside the "
                   "text mask the blend is beta_text (1: the text branch), outside it beta_scene (0: the scene "
                   "branch), so R steers the letters and nothing else. The glyph map feeds trained text "
                   "branches made with a glyph channel; the shared branch ignores it.", 4)
    glyph = flow.add("GlyphSR_GlyphRender", g, text=ocr["text"], reference=upscaled[0], width=1024, height=1024,
                     mask_dilation=d.MASK_DILATION, font_path="")
    apply = flow.add("GlyphSR_ApplyTSControlNet", g, control_net=ts["control_net"], image=upscaled[0],
                     text_image=restored[0], glyph=glyph["glyph"], text_mask=glyph["mask"], vae=ckpt["VAE"],
                     beta_text=1.0, beta_scene=0.0, strength=1.0, start_percent=0.0, end_percent=1.0,
                     **{name: cond[0] for name, cond in conds.items()})

    sampling = dict(seed=0, steps=d.STEPS, cfg=d.CFG, sampler_name="dpmpp_2m", scheduler="karras",
                    denoise=d.DENOISE, text_cfg=d.TEXT_CFG, schedule=d.SCHEDULE, switch_at=d.SWITCH_AT,
                    pattern=d.PATTERN, cfg_start=d.CFG_START)
    conds = {name: apply[name] for name in ("scene_positive", "scene_negative", "text_positive", "text_negative")}
    if tiled:
        g_words = _group(flow, "Tile prompts",
                         "Each tile's text prompt names only the words inside that tile, plus the caption. "
                         "tile_size and tile_overlap must match the sampler's.", 3, row=1)
        g = _group(flow, "Tiled ping-pong sampling",
                   "Tiles blended every step (no seams), each with its hint crops and its own words; tiled VAE.",
                   5)
        latent = flow.add("VAEEncodeTiled", g, pixels=upscaled[0], vae=ckpt["VAE"], tile_size=1024, overlap=64,
                          temporal_size=64, temporal_overlap=8)
        caption_input = {"caption": caption["caption"]} if caption is not None else {"caption": HAND_CAPTION}
        tile_prompts = flow.add("GlyphSR_TilePrompts", g_words, clip=ckpt["CLIP"], latent=latent[0],
                                text=ocr["text"], tile_size=TILE_SIZE, tile_overlap=TILE_OVERLAP,
                                max_words=d.MAX_WORDS, include_locations=True, min_inside=0.5, **caption_input)
        flow.add("PreviewAny", g_words, title="Words per tile", source=tile_prompts["report"])
        sampled = flow.add("GlyphSR_TiledPingPongKSampler", g, model=ckpt["MODEL"], latent_image=latent[0],
                           tile_size=TILE_SIZE, tile_overlap=TILE_OVERLAP, tile_batch_size=1,
                           tile_prompts=tile_prompts["tile_prompts"], **conds, **sampling)
    else:
        g = _group(flow, "Ping-pong sampling",
                   "The sampler alternates the scene and text prompt pairs from step to step, then text only "
                   "for the last 10% (alternate_then_text). CFG ramps from cfg_start to cfg as in the paper.",
                   5)
        latent = flow.add("VAEEncode", g, pixels=upscaled[0], vae=ckpt["VAE"])
        sampled = flow.add("GlyphSR_PingPongKSampler", g, model=ckpt["MODEL"], latent_image=latent[0], **conds,
                           **sampling)

    # the tiled sampler is taller: its flow puts Colour Fix under it and the Guard under TS-ControlNet
    g = _group(flow, "Colour fix",
                   "Colour Fix pulls the colours back toward the input.", 5 if tiled else 4, row=1)
    if tiled:
        decoded = flow.add("VAEDecodeTiled", g, samples=sampled[0], vae=ckpt["VAE"], tile_size=512, overlap=64,
                           temporal_size=64, temporal_overlap=8)
    else:
        decoded = flow.add("VAEDecode", g, samples=sampled[0], vae=ckpt["VAE"])
    fixed = flow.add("GlyphSR_ColorFix", g, image=decoded[0], reference=upscaled[0], method=d.COLOR_FIX)

    g = _group(flow, "Keep words",
                   "Keep Words re-reads the result. A wrong word is re-drawn in its box (new seed, stronger "
                   "text CFG each round), then R's letters are put back. Nothing else changes.",
                   4 if tiled else 5, row=1)
    guard = flow.add("GlyphSR_KeepWords", g, image=fixed["image"], reference=restored[0], text=ocr["text"],
                     mode="changed words", min_confidence=d.MIN_CONFIDENCE, dilation=d.GUARD_DILATION,
                     model=ckpt["MODEL"], vae=ckpt["VAE"], text_positive=apply["text_positive"],
                     text_negative=apply["text_negative"], seed=0, steps=20, cfg=d.TEXT_CFG, sampler_name="dpmpp_2m",
                     scheduler="karras", denoise=d.GUARD_DENOISE, color_match=d.COLOR_FIX, rounds=d.GUARD_ROUNDS)
    g = _group(flow, "Save and check",
                   "The result is saved. The Keep Words report says what was done to each word; the Text "
                   "Fidelity Check then reads the saved image and lists every word kept, changed, missing or "
                   "invented (F1 1.0 = all kept).", 6)
    flow.add("SaveImage", g, images=guard["image"], filename_prefix="glyphsr")
    flow.add("PreviewAny", g, title="Keep Words report", source=guard["report"])
    check = flow.add("GlyphSR_TextFidelity", g, image=guard["image"], text=ocr["text"], min_confidence=0.5,
                     ocr_scale="auto", min_overlap=0.3, mask_dilation=4)
    flow.add("PreviewAny", g, title="Text fidelity report", source=check["report"])


def upscale_flow(name: str, base: str, with_vlm: bool, tiled: bool = False) -> Flow:
    flow = Flow(name)
    models = MODELS[base]
    image, restored, upscaled = _load(flow, models)
    ocr = _read(flow, restored, review_at=(2, 1))
    caption = _caption(flow, restored, ocr) if with_vlm else None
    prompts = _prompts(flow, ocr, caption)
    _diffuse(flow, models, restored, upscaled, ocr, prompts, tiled=tiled, caption=caption)
    return flow


def restore_flow() -> Flow:
    """Stage 1 alone: needs no file beyond the pack."""
    flow = Flow("glyphsr_restore_x4")
    image, restored, _ = _load(flow, MODELS["sd15"], upscale=False)
    flow.add("SaveImage", _named(flow, "Load and restore"), images=restored[0], filename_prefix="glyphsr_restored")
    lq = _read(flow, image, what="the low-quality image (the words R must keep)")
    g = _group(flow, "Check the text",
                   "The Text Fidelity Check reads R and compares it with the low-quality image's words: kept, "
                   "changed, missing or invented (F1 1.0 = all kept); the mask shows where words changed.", 2)
    check = flow.add("GlyphSR_TextFidelity", g, image=restored[0], text=lq["text"], min_confidence=0.5,
                     ocr_scale="auto", min_overlap=0.3, mask_dilation=4)
    flow.add("PreviewAny", g, title="Text fidelity report", source=check["report"])
    changed = flow.add("MaskToImage", g, mask=check["changed_mask"])
    flow.add("PreviewImage", g, title="Where words changed", images=changed[0])
    return flow


def keep_words_flow() -> Flow:
    """The user's upscaler for the look, Text Restore for the words: runs on day one with one download."""
    flow = Flow("glyphsr_keep_words")
    image, restored, _ = _load(flow, MODELS["sd15"], upscale=False, r_use="OCR reads R: its words are the ones kept.")
    g = _group(flow, "Your upscaler",
               f"Any upscaler ComfyUI loads, for its look. {UPSCALER} is linked: the Missing Models dialog "
               "downloads it into models/upscale_models. Pick your own (SPAN, ClearReality, ...) in the list.", 0,
               row=1)
    loader = flow.add("UpscaleModelLoader", g, model_name=UPSCALER,
                      models=[{"name": UPSCALER, "url": UPSCALER_URL, "directory": "upscale_models"}])
    upscaled = flow.add("ImageUpscaleWithModel", g, upscale_model=loader[0], image=image[0])
    ocr = _read(flow, restored, review_at=(1, 1))
    g = _group(flow, "Keep words",
               "Keep Words reads the upscaler's image and puts back every word it changed, lost or invented, "
               "with the least visible repair that reads right: the upscaler's fine detail over R's letters, "
               "then R's letters sharpened, then R's pixels. Every other pixel stays the upscaler's. "
               "mode 'all text' repairs every word box.", 2)
    kept = flow.add("GlyphSR_KeepWords", g, image=upscaled[0], reference=restored[0], text=ocr["text"],
                    mode="changed words", min_confidence=d.MIN_CONFIDENCE, dilation=d.GUARD_DILATION, seed=0,
                    steps=20, cfg=d.TEXT_CFG, sampler_name="dpmpp_2m", scheduler="karras", denoise=d.GUARD_DENOISE,
                    color_match=d.COLOR_FIX, rounds=0)
    flow.add("PreviewAny", g, title="Keep Words report", source=kept["report"])
    g = _group(flow, "Save and check",
               "The result is saved. The Text Fidelity Checks read the upscaler's raw image and the saved one: "
               "the words each kept, changed, missing or invented (F1 1.0 = all kept).", 3)
    flow.add("SaveImage", g, images=kept["image"], filename_prefix="glyphsr_kept")
    for title, picture in (("Words kept", kept["image"]), ("Raw upscaler", upscaled[0])):
        check = flow.add("GlyphSR_TextFidelity", g, title=f"Text fidelity: {title.lower()}", image=picture,
                         text=ocr["text"], min_confidence=0.5, ocr_scale="auto", min_overlap=0.3, mask_dilation=4)
        flow.add("PreviewAny", g, title=f"{title} report", source=check["report"])
    return flow


def ocr_prompts_flow() -> Flow:
    flow = Flow("glyphsr_ocr_prompts")
    models = MODELS["sd15"]
    image, restored, _ = _load(flow, models, upscale=False)
    ocr = _read(flow, restored)
    flow.add("PreviewAny", _named(flow, "Read the text (OCR)"), title="OCR JSON", source=ocr["json"])
    caption = _caption(flow, restored, ocr, column=0, row=1)
    prompts = _prompts(flow, ocr, caption)
    g = _group(flow, "The four prompts",
                   "Exactly what each CLIP Text Encode would receive.", 3)
    for name in ("scene_positive", "scene_negative", "text_positive", "text_negative"):
        flow.add("PreviewAny", g, title=name.replace("_", " ").capitalize(), source=prompts[name])
    g = _group(flow, "Glyph map and mask",
                   "What the text branch will see: the words redrawn white on black where OCR found them, and "
                   "the mask where beta_text applies.", 4)
    glyph = flow.add("GlyphSR_GlyphRender", g, text=ocr["text"], reference=restored[0], width=1024, height=1024,
                     mask_dilation=d.MASK_DILATION, font_path="")
    flow.add("PreviewImage", g, title="Glyph map", images=glyph["glyph"])
    mask = flow.add("MaskToImage", g, mask=glyph["mask"])
    flow.add("PreviewImage", g, title="Text mask", images=mask[0])
    return flow


def all_flows() -> list[Flow]:
    return [upscale_flow("glyphsr_sdxl_x4", "sdxl", with_vlm=True),
            upscale_flow("glyphsr_sdxl_x4_tiled", "sdxl", with_vlm=True, tiled=True),
            upscale_flow("glyphsr_sd15_x4", "sd15", with_vlm=True),
            ocr_prompts_flow(),
            upscale_flow("glyphsr_no_vlm", "sd15", with_vlm=False),
            restore_flow(),
            keep_words_flow()]


def core_node_types() -> set[str]:
    """ComfyUI core nodes the workflows use (what tests/data/comfyui_core_nodes.json must cover)."""
    from node_specs import UI_ONLY_NODES

    return {t for f in all_flows() for t in f.class_types() if not t.startswith("GlyphSR_")} - UI_ONLY_NODES


def dump(data: dict) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def rendered_files(specs: dict | None = None) -> dict[Path, str]:
    """{path: text} of every workflow file, UI and API."""
    if specs is None:
        from node_specs import load_specs

        specs = load_specs()
    files = {}
    for flow in all_flows():
        files[UI_DIR / f"{flow.name}.json"] = dump(to_ui(flow, specs))
        files[API_DIR / f"{flow.name}.api.json"] = dump(to_api(flow, specs))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    stale = []
    for path, text in rendered_files().items():
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(REPO_ROOT)}")
    for path in stale:
        print(f"out of date: {path.relative_to(REPO_ROOT)}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
