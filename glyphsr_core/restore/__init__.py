"""Text Restore: the pack's stage 1, a compact text-aware x4 super-resolution network.

`load_restorer` reads a `.safetensors` restorer (the bundled one or any spandrel-known SR model);
`restore` / `restore_pil` run it with tiles on images of any size at x2, x4 or x8.
"""

from .model_file import BUNDLED_NAME, BUNDLED_PATH, LoadedRestorer, RestorerFileError, load_restorer, save_restorer
from .run import RestoreInputError, restore, restore_pil

__all__ = ["BUNDLED_NAME", "BUNDLED_PATH", "LoadedRestorer", "RestoreInputError", "RestorerFileError",
           "load_restorer", "restore", "restore_pil", "save_restorer"]
