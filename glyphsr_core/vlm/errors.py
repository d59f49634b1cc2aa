"""Errors of the captioner. All are ValueErrors (bad input), each naming the model folder or input."""

from __future__ import annotations

from ..errors import InvalidInputError


class VLMError(InvalidInputError):
    """Base class: a model folder or a caption request the captioner cannot use."""


class ModelFolderError(VLMError):
    """The folder is missing, or is not a transformers model folder (no readable config.json)."""


class MissingProcessorError(VLMError):
    """The folder has no tokenizer or image processor files, or they cannot be built here."""


class UnsupportedArchitectureError(VLMError):
    """The model type is unknown to the installed transformers or is not a vision-language model."""


class RemoteCodeRequiredError(VLMError):
    """The model needs Python code shipped in its folder and trust_remote_code is off."""


class CorruptWeightsError(VLMError):
    """The weights are missing, unreadable, not safetensors, or do not match the config."""


class CaptionInputError(VLMError):
    """A caption request has an empty prompt, an unusable image or a bad setting."""


class GenerationStopped(RuntimeError):
    """Raised when the stop check asked generation to stop (the user cancelled)."""
