"""Scene captions from a locally stored vision-language model (transformers image-text-to-text).

Step 2 of the method: the VLM describes the scene for the scene prompt; OCR supplies the words.
transformers is imported lazily, so importing this package is cheap.
"""

from .captioner import PRECISIONS, Captioner, load_captioner, prepare_image, resolve_dtype
from .errors import (CaptionInputError, CorruptWeightsError, GenerationStopped, MissingProcessorError,
                     ModelFolderError, RemoteCodeRequiredError, UnsupportedArchitectureError, VLMError)
from .folder import inspect_model_folder
from .prompt import DEFAULT_CAPTION_PROMPT, compose_prompt

__all__ = [
    "PRECISIONS", "Captioner", "load_captioner", "prepare_image", "resolve_dtype", "CaptionInputError",
    "CorruptWeightsError", "GenerationStopped", "MissingProcessorError", "ModelFolderError",
    "RemoteCodeRequiredError", "UnsupportedArchitectureError", "VLMError", "inspect_model_folder",
    "DEFAULT_CAPTION_PROMPT", "compose_prompt",
]
