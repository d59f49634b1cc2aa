"""Test set-up shared by every test.

- `glyphsr_core` is imported from the repository root (it never needs ComfyUI).
- The node pack itself is loaded the way ComfyUI loads it: the repository folder imported as a
  package (here named `glyphsr_pack`), so the nodes' relative imports are exercised for real.
- Unit tests run the nodes against the stand-in ComfyUI modules in `tests/comfy_standin/`.
- No test may reach a model hub.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent
PACK_NAME = "glyphsr_pack"

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
TESTS_DIR = str(Path(__file__).resolve().parent)
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

from comfy_standin import install as _install_comfy_standin  # noqa: E402

if "comfy" not in sys.modules:  # a process that already runs real ComfyUI keeps it
    _install_comfy_standin()


def load_pack():
    """Import the repository as ComfyUI does (a package from its folder's __init__.py)."""
    if PACK_NAME in sys.modules:
        return sys.modules[PACK_NAME]
    spec = importlib.util.spec_from_file_location(
        PACK_NAME, REPO_ROOT / "__init__.py", submodule_search_locations=[str(REPO_ROOT)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK_NAME] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[PACK_NAME]
        raise
    return module


@pytest.fixture(scope="session")
def pack():
    return load_pack()


@pytest.fixture(autouse=True)
def _reset_comfy_stub():
    """Each test starts with no pending interrupt and empty recordings."""
    import comfy.model_management as mm
    import comfy.utils as cu

    mm.interrupt_processing = False
    mm.load_calls.clear()
    cu.created_bars.clear()
    yield
    mm.interrupt_processing = False
