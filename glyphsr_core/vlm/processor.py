"""Turning (image, prompt) into model inputs and generated ids back into text.

The usual route is the model's own `AutoProcessor`. Qwen2/2.5/3-VL processors also build a video
processor that needs torchvision; where that is missing (a bare Python install; ComfyUI itself
ships torchvision) the Qwen family falls back to its tokenizer + image processor, expanding the
image placeholder by hand exactly as the full processor does.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from PIL import Image

from .errors import MissingProcessorError
from .folder import ModelFolder

log = logging.getLogger(__name__)

#: model types whose processor can be replaced by tokenizer + image processor (grid-merged image tokens)
QWEN_GRID_TYPES = frozenset({"qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe"})


def _messages(prompt: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]


class CaptionProcessor:
    """Wraps a transformers processor: chat formatting, encoding one image, decoding."""

    def __init__(self, processor: Any, folder: ModelFolder):
        self.processor = processor
        self.folder = folder
        self.tokenizer = getattr(processor, "tokenizer", processor)

    @property
    def chat_template(self) -> str | None:
        return getattr(self.processor, "chat_template", None) or getattr(self.tokenizer, "chat_template", None)

    def format_prompt(self, prompt: str) -> str:
        """The model's chat template around one image and the prompt; models without one get the
        prompt as written."""
        if not self.chat_template:
            return prompt
        return self.processor.apply_chat_template(_messages(prompt), add_generation_prompt=True, tokenize=False)

    def encode(self, image: Image.Image, text: str) -> dict[str, Any]:
        return dict(self.processor(images=[image], text=[text], return_tensors="pt"))

    def decode(self, token_ids) -> str:
        return self.tokenizer.decode(token_ids, skip_special_tokens=True)


class QwenGridProcessor(CaptionProcessor):
    """Qwen-VL family without the full processor: each image placeholder becomes
    `grid_t * grid_h * grid_w / merge_size**2` copies, the count the vision tower emits."""

    def __init__(self, tokenizer: Any, image_processor: Any, chat_template: str | None, folder: ModelFolder):
        super().__init__(tokenizer, folder)
        self.image_processor = image_processor
        self._chat_template = chat_template or tokenizer.chat_template
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)

    @property
    def chat_template(self) -> str | None:
        return self._chat_template

    def format_prompt(self, prompt: str) -> str:
        if not self.chat_template:
            raise MissingProcessorError(f"VLM folder '{self.folder.path}' has no chat template "
                                        f"(chat_template.jinja or chat_template.json)")
        return self.tokenizer.apply_chat_template(_messages(prompt), chat_template=self.chat_template,
                                                  add_generation_prompt=True, tokenize=False)

    def encode(self, image: Image.Image, text: str) -> dict[str, Any]:
        vision = self.image_processor(images=[image], return_tensors="pt")
        merge = int(self.image_processor.merge_size) ** 2
        counts = [int(grid.prod()) // merge for grid in vision["image_grid_thw"]]
        if text.count(self.image_token) != len(counts):
            raise MissingProcessorError(f"VLM folder '{self.folder.path}': the chat template does not place "
                                        f"one '{self.image_token}' per image")
        marker = "\0glyphsr-image\0"
        for count in counts:
            text = text.replace(self.image_token, marker * count, 1)
        encoded = self.tokenizer([text.replace(marker, self.image_token)], return_tensors="pt")
        inputs = dict(encoded)
        inputs["mm_token_type_ids"] = (encoded["input_ids"] == self.image_token_id).to(encoded["input_ids"].dtype)
        inputs.update(vision)
        return inputs


def _folder_chat_template(folder: ModelFolder) -> str | None:
    jinja = folder.path / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    for name in ("chat_template.json", "processor_config.json", "tokenizer_config.json"):
        candidate = folder.path / name
        if candidate.is_file():
            try:
                template = json.loads(candidate.read_text(encoding="utf-8")).get("chat_template")
            except (OSError, ValueError, AttributeError):
                continue
            if isinstance(template, str):
                return template
    return None


def _qwen_grid_processor(folder: ModelFolder) -> QwenGridProcessor:
    from transformers import AutoImageProcessor, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder.path, local_files_only=True)
    image_processor = AutoImageProcessor.from_pretrained(folder.path, local_files_only=True)
    return QwenGridProcessor(tokenizer, image_processor, _folder_chat_template(folder), folder)


def build_processor(folder: ModelFolder, trust_remote_code: bool = False) -> CaptionProcessor:
    """The model's processor, or the Qwen fallback when the full one needs a package not installed."""
    from transformers import AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(folder.path, local_files_only=True,
                                                  trust_remote_code=trust_remote_code)
    except ImportError as exc:
        if folder.model_type in QWEN_GRID_TYPES:
            log.info("GlyphSR VLM: full %s processor unavailable (%s); using tokenizer + image processor",
                     folder.model_type, str(exc).strip().splitlines()[0])
            try:
                return _qwen_grid_processor(folder)
            except (OSError, ValueError, ImportError) as inner:
                raise MissingProcessorError(f"VLM folder '{folder.path}': cannot build its tokenizer or image "
                                            f"processor ({inner})") from inner
        reason = str(exc).strip().splitlines()[0]
        raise MissingProcessorError(f"VLM folder '{folder.path}': its processor needs a package that is not "
                                    f"installed ({reason})") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MissingProcessorError(f"VLM folder '{folder.path}': cannot build its processor ({exc})") from exc
    if not hasattr(processor, "image_processor"):
        raise MissingProcessorError(f"VLM folder '{folder.path}' has a tokenizer but no image processor "
                                    f"(preprocessor_config.json / processor_config.json)")
    return CaptionProcessor(processor, folder)
