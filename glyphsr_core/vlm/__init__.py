"""Scene captions from a locally stored vision-language model (transformers image-text-to-text).

Step 2 of the method: the VLM describes the scene for the scene prompt; OCR supplies the words.
transformers is imported lazily, so importing this package is cheap.
"""

from .captioner import (
                     PRECISIONS,
                     Captioner,
                     load_captioner,
                     prepare_image,
                     resolve_dtype,
)
from .errors import (
                     CaptionInputError,
                     CorruptWeightsError,
                     GenerationStopped,
                     MissingProcessorError,
                     ModelFolderError,
                     RemoteCodeRequiredError,
                     UnsupportedArchitectureError,
                     VLMError,
)
from .folder import inspect_model_folder
from .prompt import DEFAULT_CAPTION_PROMPT, compose_prompt

__all__ = [
                     "DEFAULT_CAPTION_PROMPT",
                     "PRECISIONS",
                     "CaptionInputError",
                     "Captioner",
                     "CorruptWeightsError",
                     "GenerationStopped",
                     "MissingProcessorError",
                     "ModelFolderError",
                     "RemoteCodeRequiredError",
                     "UnsupportedArchitectureError",
                     "VLMError",
                     "compose_prompt",
                     "inspect_model_folder",
                     "load_captioner",
                     "prepare_image",
                     "resolve_dtype",
]
