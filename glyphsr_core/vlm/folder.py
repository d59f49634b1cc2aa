"""Checks on a local model folder before transformers touches it, so problems get plain answers."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import MissingPackageError
from .errors import (
    CorruptWeightsError,
    MissingProcessorError,
    ModelFolderError,
    RemoteCodeRequiredError,
    UnsupportedArchitectureError,
)

#: AutoModelForImageTextToText.from_pretrained(dtype=...) and the processors the tests cover
MIN_TRANSFORMERS = "4.56"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model", "tokenizer_config.json")
IMAGE_PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")
SAFETENSORS_FILES = ("model.safetensors", "model.safetensors.index.json")
PICKLE_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")


@dataclass(frozen=True)
class ModelFolder:
    """What a folder holds, as far as captioning cares."""

    path: Path
    config: dict
    model_type: str
    native: bool  # transformers ships code for this model type

    @property
    def name(self) -> str:
        return self.path.name


def _version_tuple(version: str) -> tuple[int, ...]:
    """'4.56.0.dev0' -> (4, 56, 0): the numeric release parts."""
    parts = []
    for piece in version.split(".")[:3]:
        match = re.match(r"\d+", piece)
        if not match:
            break
        parts.append(int(match.group()))
    return tuple(parts)


def _transformers_knows(model_type: str) -> tuple[bool, bool]:
    """(known model type, is an image-text-to-text model) for the installed transformers."""
    try:
        import transformers
    except ImportError as exc:
        raise MissingPackageError("GlyphSR VLM captioning needs the 'transformers' package: "
                          f"pip install 'transformers>={MIN_TRANSFORMERS}'") from exc
    if _version_tuple(transformers.__version__) < _version_tuple(MIN_TRANSFORMERS):
        raise MissingPackageError(f"GlyphSR VLM captioning needs transformers {MIN_TRANSFORMERS} or newer (AutoModelForImageText"
                          f"ToText with dtype=); {transformers.__version__} is installed: "
                          f"pip install -U 'transformers>={MIN_TRANSFORMERS}'")
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES,
    )

    return model_type in CONFIG_MAPPING_NAMES, model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES


def _has_any(path: Path, names: tuple[str, ...]) -> bool:
    return any((path / n).is_file() for n in names)


def inspect_model_folder(folder: str | Path, trust_remote_code: bool = False) -> ModelFolder:
    """Validate a model folder: config, architecture, remote code, processor files and safetensors weights."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise ModelFolderError(f"VLM folder '{path}' does not exist or is not a folder")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ModelFolderError(f"VLM folder '{path}' has no config.json: put the whole downloaded model folder "
                               f"(config.json, *.safetensors, tokenizer and processor files) there")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFolderError(f"VLM folder '{path}': config.json is not valid JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise ModelFolderError(f"VLM folder '{path}': config.json must hold a JSON object")
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise UnsupportedArchitectureError(f"VLM folder '{path}': config.json names no 'model_type', so the "
                                           f"architecture is unknown")

    known, is_vlm = _transformers_knows(model_type)
    if not known:
        if "auto_map" in config:
            if not trust_remote_code:
                raise RemoteCodeRequiredError(
                    f"VLM folder '{path}': model type '{model_type}' needs the Python code shipped with the "
                    f"model (config.json has 'auto_map'). Turn on trust_remote_code only if you trust its "
                    f"source, or pick a model the installed transformers supports natively")
        else:
            import transformers

            raise UnsupportedArchitectureError(
                f"VLM folder '{path}': model type '{model_type}' is unknown to transformers "
                f"{transformers.__version__}; upgrade transformers or use a supported vision-language model")
    elif not is_vlm:
        raise UnsupportedArchitectureError(
            f"VLM folder '{path}': model type '{model_type}' is not an image-text-to-text (vision-language) "
            f"model; captioning needs one such as LLaVA, Qwen2.5-VL or SmolVLM")

    if not _has_any(path, TOKENIZER_FILES):
        raise MissingProcessorError(f"VLM folder '{path}' has no tokenizer files ({', '.join(TOKENIZER_FILES[:3])}"
                                    f", ...): download the complete model repository")
    if not _has_any(path, IMAGE_PROCESSOR_FILES):
        raise MissingProcessorError(f"VLM folder '{path}' has no image processor settings "
                                    f"(preprocessor_config.json or processor_config.json): download the "
                                    f"complete model repository")

    if not _has_any(path, SAFETENSORS_FILES) and not any(path.glob("*.safetensors")):
        if _has_any(path, PICKLE_FILES):
            raise CorruptWeightsError(f"VLM folder '{path}' only has pickled weights (pytorch_model.bin); "
                                      f"GlyphSR loads safetensors only. Download the safetensors version or "
                                      f"convert the weights to safetensors")
        raise CorruptWeightsError(f"VLM folder '{path}' has no weights (model.safetensors or "
                                  f"model-*.safetensors with its index)")
    return ModelFolder(path=path, config=config, model_type=model_type, native=known)
