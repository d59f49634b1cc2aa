"""VLM nodes: load a local transformers vision-language model under ComfyUI's model manager, caption images.

The transformers model sits in a plain nn.Module holder wrapped in the classic ModelPatcher:
transformers models have a read-only `.device` that ModelPatcher assigns, and the dynamic-VRAM
patcher never moves plain torch layers. `load_models_gpu(..., force_full_load=True)` before each
use puts it on the GPU and lets ComfyUI offload it when the UNet needs the memory.
"""

from __future__ import annotations

import os

import comfy.model_management as mm
import comfy.model_patcher
import folder_paths
import torch

from ..glyphsr_core.imageops import comfy_to_pil
from ..glyphsr_core.vlm import (
    DEFAULT_CAPTION_PROMPT,
    PRECISIONS,
    Captioner,
    CaptionInputError,
    GenerationStopped,
    compose_prompt,
    load_captioner,
)
from .ocr import TEXT_TYPE
from .runtime import CATEGORY, check_interrupt, is_interrupted, progress_bar

VLM_TYPE = "GLYPHSR_VLM"
#: models/LLM is where other captioning packs (Florence-2, QwenVL) keep HF folders; models/vlm is ours
MODEL_FOLDER_KEYS = ("LLM", "vlm")
#: files a model folder holds; listing is by sub-folder (see list_model_folders), this keeps /models/<key> tidy
MODEL_FILE_EXTENSIONS = {".json", ".safetensors"}
#: how deep to look for model folders (models/LLM/<name> or models/LLM/<group>/<name>)
MAX_DEPTH = 2


def register_model_folders() -> None:
    """Register models/LLM and models/vlm, keeping paths and extensions extra_model_paths.yaml or
    another pack already set (an empty extension set means "all files" and is left as is)."""
    for key in MODEL_FOLDER_KEYS:
        default = os.path.join(folder_paths.models_dir, key)
        if key in folder_paths.folder_names_and_paths:
            paths, extensions = folder_paths.folder_names_and_paths[key]
            paths = list(paths) + ([default] if default not in paths else [])
            extensions = set(extensions) | MODEL_FILE_EXTENSIONS if extensions else set(extensions)
        else:
            paths, extensions = [default], set(MODEL_FILE_EXTENSIONS)
        folder_paths.folder_names_and_paths[key] = (paths, extensions)


def _roots() -> list[str]:
    roots: list[str] = []
    for key in MODEL_FOLDER_KEYS:
        for root in folder_paths.get_folder_paths(key):
            if root not in roots:
                roots.append(root)
    return roots


def list_model_folders() -> list[str]:
    """Sub-folders (relative, '/'-separated) holding a config.json, across every registered root."""
    found: set[str] = set()
    for root in _roots():
        if not os.path.isdir(root):
            continue
        for dirpath, dirnames, _files in os.walk(root, followlinks=True):
            depth = os.path.relpath(dirpath, root).count(os.sep) + 1 if dirpath != root else 0
            if depth >= MAX_DEPTH:
                dirnames[:] = []
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            if dirpath != root and os.path.isfile(os.path.join(dirpath, "config.json")):
                found.add(os.path.relpath(dirpath, root).replace(os.sep, "/"))
                dirnames[:] = []  # a model's own sub-folders are not models
    return sorted(found, key=str.lower)


def resolve_model_folder(name: str) -> str:
    for root in _roots():
        candidate = os.path.join(root, os.path.normpath("/" + name).lstrip(os.sep))
        if os.path.isfile(os.path.join(candidate, "config.json")):
            return candidate
    raise FileNotFoundError(f"VLM folder '{name}' not found under {', '.join(_roots())} "
                            f"(expected <folder>/{name}/config.json)")


class GlyphSRVLM(torch.nn.Module):
    """Holder for the transformers model, so ModelPatcher may set `.device` on it."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.hf_model = model


class VLMHandle:
    """What GLYPHSR_VLM carries: the captioner and the patcher that ComfyUI loads and offloads."""

    def __init__(self, captioner: Captioner, patcher):
        self.captioner = captioner
        self.patcher = patcher

    def load(self, max_new_tokens: int) -> None:
        mm.load_models_gpu([self.patcher], memory_required=self.captioner.inference_bytes(max_new_tokens),
                           force_full_load=True)


class VLMLoader:
    DESCRIPTION = (
        "Loads a vision-language model (transformers image-text-to-text: LLaVA, LLaVA-NeXT, Qwen2-VL/2.5-VL, "
        "SmolVLM, ...) from a folder in models/LLM or models/vlm, offline. ComfyUI moves it to the GPU "
        "when captioning and offloads it when other models need the memory."
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (list_model_folders(), {"tooltip": "A model folder (with config.json) inside models/LLM "
                                                             "or models/vlm."}),
                "precision": (list(PRECISIONS), {"default": "auto",
                                                 "tooltip": "auto: bf16 or fp16 on GPUs that support it, fp32 on "
                                                            "the CPU (half precision is very slow there)."}),
                "trust_remote_code": ("BOOLEAN", {"default": False,
                                                  "tooltip": "Run Python code shipped inside the model folder. Only "
                                                             "for models from sources you trust; not needed for "
                                                             "models transformers supports natively."}),
            }
        }

    RETURN_TYPES = (VLM_TYPE,)
    RETURN_NAMES = ("vlm",)
    FUNCTION = "load"
    CATEGORY = CATEGORY

    def load(self, model: str, precision: str, trust_remote_code: bool):
        device = mm.get_torch_device()
        captioner = load_captioner(
            resolve_model_folder(model), dtype=precision, trust_remote_code=trust_remote_code, device=device,
            bf16_ok=mm.should_use_bf16(device), fp16_ok=mm.should_use_fp16(device))
        patcher = comfy.model_patcher.ModelPatcher(GlyphSRVLM(captioner.model), load_device=device,
                                                   offload_device=mm.unet_offload_device(),
                                                   size=captioner.weight_bytes())
        return (VLMHandle(captioner, patcher),)


class VLMCaption:
    DESCRIPTION = (
        "Describes each image with the VLM: one caption per image of the batch (a list output, so a batch "
        "gives a list of captions; 'GlyphSR Build Prompts' pairs caption i with image i). Optionally tells the "
        "model the words OCR found. Cancel stops between tokens."
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "vlm": (VLM_TYPE, {"tooltip": "From 'GlyphSR Load VLM'."}),
                "image": ("IMAGE", {"tooltip": "Image or batch to describe."}),
                "prompt": ("STRING", {"multiline": True, "default": DEFAULT_CAPTION_PROMPT,
                                      "tooltip": "What to ask the model. The default asks for a scene description "
                                                 "that says where text is without transcribing it (OCR gives the "
                                                 "words)."}),
                "max_new_tokens": ("INT", {"default": 256, "min": 1, "max": 4096, "step": 1,
                                           "tooltip": "Longest caption, in tokens."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "control_after_generate": True,
                                 "tooltip": "Used when temperature > 0."}),
                "temperature": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 2.0, "step": 0.05,
                                          "tooltip": "0 = greedy (deterministic); higher = more varied captions."}),
                "append_ocr_words": ("BOOLEAN", {"default": False,
                                                 "tooltip": "Add 'The image contains the words: ...' from the text "
                                                            "input to the prompt."}),
            },
            "optional": {
                "text": (TEXT_TYPE, {"tooltip": "Words from 'GlyphSR OCR Extract' (one result per image)."}),
            },
        }

    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("caption",)
    OUTPUT_IS_LIST = (True,)
    FUNCTION = "caption"
    CATEGORY = CATEGORY

    def caption(self, vlm: VLMHandle, image, prompt: str, max_new_tokens: int, seed: int, temperature: float,
                append_ocr_words: bool, text=None):
        images = comfy_to_pil(image)
        results = list(text) if text else []
        if results and len(results) not in (1, len(images)):
            raise CaptionInputError(f"'text' has {len(results)} OCR results for {len(images)} images; "
                                    f"give one result or one per image")
        prompts = [compose_prompt(prompt, results[min(i, len(results) - 1)] if results else None, append_ocr_words)
                   for i in range(len(images))]
        vlm.load(max_new_tokens)
        bar = progress_bar(len(images) * max_new_tokens)
        try:
            captions = vlm.captioner.caption(images, prompts, max_new_tokens=max_new_tokens, seed=seed,
                                             temperature=temperature, should_stop=is_interrupted,
                                             on_token=lambda done, total: bar.update_absolute(done, total))
        except GenerationStopped:
            check_interrupt()
            raise
        return (captions,)


NODE_CLASS_MAPPINGS = {"GlyphSR_VLMLoader": VLMLoader, "GlyphSR_VLMCaption": VLMCaption}
NODE_DISPLAY_NAME_MAPPINGS = {"GlyphSR_VLMLoader": "GlyphSR Load VLM", "GlyphSR_VLMCaption": "GlyphSR VLM Caption"}

register_model_folders()
