"""Captioning with a locally stored transformers image-text-to-text model.

One image is captioned per `generate` call: captions do not depend on what else is in the batch,
padding never enters, and a cancel or a progress tick lands between tokens of any image.
The model is loaded on the CPU; whoever runs it (ComfyUI's model manager, or a script) decides
where it lives, and inputs follow the model's current device.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..imageops import to_pil_rgb
from .errors import CaptionInputError, CorruptWeightsError, GenerationStopped, VLMError
from .folder import ModelFolder, inspect_model_folder
from .processor import CaptionProcessor, build_processor
from .prompt import DEFAULT_CAPTION_PROMPT, compose_prompt

log = logging.getLogger(__name__)

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
PRECISIONS = ("auto", *DTYPES)
#: below this many pixels on a side there is nothing to describe
MIN_IMAGE_SIDE = 8
#: smaller images are enlarged to this short side first (vision towers need a few patches)
UPSCALE_BELOW = 64
_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)


def resolve_dtype(precision: str, device: torch.device | str | None = None, bf16_ok: bool | None = None,
                  fp16_ok: bool | None = None) -> torch.dtype:
    """The compute dtype for a precision choice. "auto" is fp32 on CPU (half-precision math is far
    slower there), bf16 where the device supports it, else fp16, else fp32. The capability flags
    default to torch's own answers; ComfyUI passes its model manager's."""
    if precision not in PRECISIONS:
        raise CaptionInputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    device = torch.device(device if device is not None else "cpu")
    if precision != "auto":
        if device.type == "cpu" and precision != "fp32":
            log.warning("GlyphSR VLM: %s on the CPU is much slower than fp32", precision)
        return DTYPES[precision]
    if device.type == "cpu":
        return torch.float32
    if bf16_ok is None:
        bf16_ok = device.type == "cuda" and torch.cuda.is_bf16_supported()
    if fp16_ok is None:
        fp16_ok = device.type in ("cuda", "mps", "xpu")
    return torch.bfloat16 if bf16_ok else torch.float16 if fp16_ok else torch.float32


def prepare_image(image: Image.Image | np.ndarray, index: int = 0, count: int = 1) -> Image.Image:
    """RGB PIL image fit for a vision tower: tiny images are refused, small ones enlarged."""
    image = to_pil_rgb(image)
    width, height = image.size
    if min(width, height) < MIN_IMAGE_SIDE:
        raise CaptionInputError(f"image {index + 1} of {count} is {width}x{height} px; captioning needs at least "
                                f"{MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} px")
    short = min(width, height)
    if short < UPSCALE_BELOW:
        scale = UPSCALE_BELOW / short
        image = image.resize((max(UPSCALE_BELOW, round(width * scale)), max(UPSCALE_BELOW, round(height * scale))),
                             Image.Resampling.BICUBIC)
    return image


def clean_caption(text: str) -> str:
    """Generated text without reasoning blocks and surrounding whitespace."""
    return _THINK_BLOCK.sub("", text).strip()


class _TokenHook:
    """A transformers StoppingCriteria: reports every generated token and stops when asked."""

    def __init__(self, on_token: Callable[[int], None] | None, should_stop: Callable[[], bool] | None):
        self.on_token = on_token
        self.should_stop = should_stop
        self.first_length: int | None = None
        self.stopped = False

    def __call__(self, input_ids: torch.LongTensor, scores=None, **kwargs) -> torch.BoolTensor:
        length = input_ids.shape[-1]
        if self.first_length is None:
            self.first_length = length
        if self.on_token is not None:
            self.on_token(length - self.first_length + 1)
        self.stopped = bool(self.should_stop and self.should_stop())
        return torch.full((input_ids.shape[0],), self.stopped, dtype=torch.bool, device=input_ids.device)


@dataclass
class Captioner:
    """A loaded VLM with its processor. `model` is a plain transformers model (CPU until moved)."""

    model: torch.nn.Module
    processor: CaptionProcessor
    folder: ModelFolder
    dtype: torch.dtype

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def weight_bytes(self) -> int:
        """Bytes of the weights, counting tied (shared) tensors once."""
        seen: dict[int, int] = {}
        for tensor in list(self.model.parameters()) + list(self.model.buffers()):
            seen[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return sum(seen.values())

    def inference_bytes(self, max_new_tokens: int, image_tokens: int = 1536) -> int:
        """Rough working memory for one caption: the KV cache for image + prompt + answer, with headroom."""
        text = self.model.config.get_text_config()
        layers = getattr(text, "num_hidden_layers", 32)
        heads = getattr(text, "num_attention_heads", 32)
        kv_heads = getattr(text, "num_key_value_heads", None) or heads
        head_dim = getattr(text, "head_dim", None) or getattr(text, "hidden_size", 4096) // heads
        tokens = image_tokens + 256 + max_new_tokens
        kv_cache = 2 * layers * kv_heads * head_dim * tokens * torch.finfo(self.dtype).bits // 8
        return int(kv_cache * 1.5) + 256 * 1024 * 1024

    def caption(self, images: Sequence[Image.Image | np.ndarray], prompt: str | Sequence[str] = DEFAULT_CAPTION_PROMPT,
                max_new_tokens: int = 256, seed: int | None = None, temperature: float = 0.0,
                should_stop: Callable[[], bool] | None = None,
                on_token: Callable[[int, int], None] | None = None) -> list[str]:
        """One caption per image. Greedy unless temperature > 0 (then sampled, reproducible with seed).

        `prompt` is one prompt for all images or one per image. `should_stop()` is polled between
        tokens; when it returns True generation ends and GenerationStopped is raised.
        `on_token(done, total)` reports progress in tokens over the whole batch
        (total = images x max_new_tokens; an image that ends early jumps to its share).
        """
        count = len(images)
        if count == 0:
            raise CaptionInputError("no images to caption")
        prompts = [prompt] * count if isinstance(prompt, str) else list(prompt)
        if len(prompts) != count:
            raise CaptionInputError(f"got {len(prompts)} prompts for {count} images; give one prompt or one per image")
        prompts = [compose_prompt(p) for p in prompts]
        if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise CaptionInputError(f"max_new_tokens must be a whole number >= 1, got {max_new_tokens!r}")
        if temperature < 0:
            raise CaptionInputError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
        prepared = [prepare_image(im, i, count) for i, im in enumerate(images)]
        total = count * max_new_tokens
        captions = []
        for index, (image, text) in enumerate(zip(prepared, prompts)):
            if should_stop is not None and should_stop():
                raise GenerationStopped(f"captioning stopped before image {index + 1} of {count}")
            base = index * max_new_tokens
            report = None if on_token is None else (lambda n, base=base: on_token(base + min(n, max_new_tokens), total))
            captions.append(self._caption_one(image, text, max_new_tokens, seed, temperature, should_stop, report,
                                              index, count))
            if on_token is not None:
                on_token(base + max_new_tokens, total)
        return captions

    def _caption_one(self, image: Image.Image, prompt: str, max_new_tokens: int, seed: int | None,
                     temperature: float, should_stop, report, index: int, count: int) -> str:
        from transformers import StoppingCriteriaList

        text = self.processor.format_prompt(prompt)
        try:
            inputs = self.processor.encode(image, text)
        except (ValueError, RuntimeError) as exc:
            raise CaptionInputError(f"image {index + 1} of {count} ({image.width}x{image.height} px) cannot be "
                                    f"prepared for '{self.name}': {exc}") from exc
        device = self.device
        inputs = {k: (v.to(device, self.dtype) if torch.is_floating_point(v) else v.to(device))
                  if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
        config = copy.deepcopy(self.model.generation_config)
        config.max_new_tokens = max_new_tokens
        config.do_sample = temperature > 0
        if temperature > 0:
            config.temperature = float(temperature)
        else:
            config.temperature = config.top_p = config.top_k = None
        if config.pad_token_id is None:
            config.pad_token_id = config.eos_token_id if config.eos_token_id is not None else 0
        hook = _TokenHook(report, should_stop)
        with torch.inference_mode(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            if seed is not None:
                torch.manual_seed(int(seed) % 2**63)
            output = self.model.generate(**inputs, generation_config=config,
                                         stopping_criteria=StoppingCriteriaList([hook]))
        if hook.stopped:
            raise GenerationStopped(f"captioning stopped during image {index + 1} of {count}")
        sequence = output[0]
        prompt_ids = inputs["input_ids"][0]
        if sequence.shape[0] >= prompt_ids.shape[0] and torch.equal(sequence[: prompt_ids.shape[0]], prompt_ids):
            sequence = sequence[prompt_ids.shape[0]:]  # decoder-only models echo the prompt
        return clean_caption(self.processor.decode(sequence))


def load_captioner(folder: str | Path, dtype: str = "auto", trust_remote_code: bool = False,
                   device: torch.device | str | None = None, bf16_ok: bool | None = None,
                   fp16_ok: bool | None = None) -> Captioner:
    """Load a VLM folder (offline, safetensors only) onto the CPU in the dtype it will compute in on `device`."""
    info = inspect_model_folder(folder, trust_remote_code=trust_remote_code)
    torch_dtype = resolve_dtype(dtype, device, bf16_ok, fp16_ok)
    processor = build_processor(info, trust_remote_code=trust_remote_code)
    model = _load_model(info, torch_dtype, trust_remote_code)
    return Captioner(model=model.eval(), processor=processor, folder=info, dtype=torch_dtype)


def _load_model(info: ModelFolder, torch_dtype: torch.dtype, trust_remote_code: bool) -> torch.nn.Module:
    from transformers import AutoModelForImageTextToText

    try:
        model, loading = AutoModelForImageTextToText.from_pretrained(
            info.path, local_files_only=True, use_safetensors=True, dtype=torch_dtype,
            trust_remote_code=trust_remote_code, output_loading_info=True)
    except ImportError as exc:
        raise VLMError(f"VLM folder '{info.path}': the model needs a package that is not installed "
                       f"({str(exc).strip().splitlines()[0]})") from exc
    except Exception as exc:  # safetensors, OSError, size mismatches: all mean unusable weight files
        if isinstance(exc, VLMError):
            raise
        raise CorruptWeightsError(f"VLM folder '{info.path}': cannot read the weights "
                                  f"({type(exc).__name__}: {str(exc).strip()[:300]}); re-download the model") from exc
    missing = list(loading.get("missing_keys", ())) + [str(k) for k in loading.get("mismatched_keys", ())]
    if missing:
        raise CorruptWeightsError(f"VLM folder '{info.path}': the weights do not match config.json "
                                  f"({len(missing)} tensors missing or mis-shaped, e.g. {', '.join(missing[:3])}); "
                                  f"re-download the model or check that the files belong together")
    return model
