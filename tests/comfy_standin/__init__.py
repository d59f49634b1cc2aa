"""Serve the ComfyUI stand-in modules under the names the nodes import (`comfy.samplers`, ...).

The stand-ins live in `standin_*.py` files, not in a `comfy/` tree, so nothing in the repository
mirrors ComfyUI's own file layout; `install()` maps the import names onto those files.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: import name -> stand-in file; `comfy` itself is a package so its submodules resolve
MODULES = {
    "comfy": "standin_comfy.py",
    "comfy.controlnet": "standin_controlnet.py",
    "comfy.model_detection": "standin_model_detection.py",
    "comfy.model_management": "standin_model_management.py",
    "comfy.model_patcher": "standin_model_patcher.py",
    "comfy.sample": "standin_sample.py",
    "comfy.samplers": "standin_samplers.py",
    "comfy.utils": "standin_utils.py",
    "folder_paths": "standin_folder_paths.py",
    "latent_preview": "standin_latent_preview.py",
    "node_helpers": "standin_node_helpers.py",
}


class _StandInFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        file = MODULES.get(fullname)
        if file is None:
            return None
        package = [] if fullname == "comfy" else None
        return importlib.util.spec_from_file_location(fullname, HERE / file, submodule_search_locations=package)


def install() -> None:
    """Put the stand-in first on the import path (idempotent)."""
    if not any(isinstance(f, _StandInFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _StandInFinder())
