"""Real-ComfyUI integration harness: a ComfyUI server with this pack installed, and a small client.

Every test under tests/integration/ is skipped unless COMFYUI_DIR points at a ComfyUI checkout.
Run with ComfyUI's interpreter (or set COMFYUI_PYTHON to it):

    COMFYUI_DIR=/path/to/ComfyUI /path/to/comfy/python -m pytest tests/integration -x -q

The pytest process has the ComfyUI stand-in (tests/comfy_standin/) on sys.path, so real ComfyUI only
ever runs in the server process or in a subprocess (see tiny_models.py). Only loopback traffic.

Fixtures:
- `comfy_server` (session): a running `comfy_client.ComfyServer` (client + paths); see its docstring.
- `tiny_sd15`, `tiny_controlnet`, `tiny_controlnet_glyph` (session): tiny
  random-weight models (tiny_models.py) installed in the server's models folders; each returns the
  file name the loader nodes list (e.g. CheckpointLoaderSimple's ckpt_name).
- `tiny_sdxl`, `tiny_controlnet_sdxl` (session): the same for SDXL (a ~1.8 GiB checkpoint, CLIP-G
  being full size, and a ~210 MiB ControlNet); built (~1 min) only when a test asks for them.
- `unique_prefix`: a SaveImage `filename_prefix` no other test uses.

Example:
    from comfy_client import Graph

    def test_x(comfy_server, tiny_sd15):
        g = Graph(comfy_server)                      # unset widgets take their defaults
        ckpt = g.node("CheckpointLoaderSimple", ckpt_name=tiny_sd15)
        ...
        result = comfy_server.queue(g)               # raises ComfyExecutionError on failure
        paths = result.files(save.id)

Environment: COMFYUI_DIR (required), COMFYUI_PYTHON (ComfyUI's interpreter; default: this one),
GLYPHSR_TEST_CACHE (keep built tiny models across runs), GLYPHSR_KEEP_SERVER_DIR=1 (keep the
server's temp folder and log), GLYPHSR_COMFY_START_TIMEOUT / GLYPHSR_COMFY_PROMPT_TIMEOUT (seconds).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # so tests can `import comfy_client, tiny_models`
    sys.path.insert(0, str(HERE))

import tiny_models  # noqa: E402
from comfy_client import ComfyServer  # noqa: E402

#: test-only custom node packs (one folder each), installed beside the pack in the test server
TEST_PACKS_DIR = HERE / "test_packs"


def comfyui_dir() -> Path | None:
    value = os.environ.get("COMFYUI_DIR")
    return Path(value).resolve() if value else None


def pytest_collection_modifyitems(config, items):
    """Mark this folder's tests `integration`; skip them unless COMFYUI_DIR names a ComfyUI checkout."""
    here = [item for item in items if HERE in Path(str(item.fspath)).resolve().parents]
    for item in here:
        item.add_marker(pytest.mark.integration)
    root = comfyui_dir()
    if root is None:
        reason = "integration tests need a real ComfyUI: set COMFYUI_DIR to a ComfyUI checkout"
    elif not (root / "main.py").is_file():
        reason = f"COMFYUI_DIR={root} is not a ComfyUI checkout (no main.py)"
    else:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in here:
        item.add_marker(skip)


# --------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def comfy_server():
    root = comfyui_dir()
    if root is None:
        pytest.skip("set COMFYUI_DIR to a ComfyUI checkout")
    base = Path(tempfile.mkdtemp(prefix="glyphsr_comfy_"))
    server = ComfyServer(root, base)
    try:
        server.prepare()
        for test_pack in sorted(TEST_PACKS_DIR.glob("*/__init__.py")):  # test-only node packs
            (server.custom_nodes_dir / test_pack.parent.name).symlink_to(test_pack.parent, target_is_directory=True)
        server.start()
        yield server
    finally:
        server.stop()
        if os.environ.get("GLYPHSR_KEEP_SERVER_DIR"):
            print(f"\nComfyUI test dir kept: {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


def pytest_sessionfinish(session, exitstatus):
    tiny_models.remove_session_cache()


def _tiny_fixture(kind: str):
    @pytest.fixture(scope="session")
    def fixture(comfy_server):
        _name, folder = tiny_models.MODEL_KINDS[kind]
        path = tiny_models.ensure_model(kind, comfy_server.comfyui_dir)
        return comfy_server.install_model(path, folder)
    fixture.__doc__ = f"File name of the tiny {kind!r} model, installed in the test server."
    return fixture


tiny_sd15 = _tiny_fixture("sd15")
tiny_controlnet = _tiny_fixture("controlnet")
tiny_controlnet_glyph = _tiny_fixture("controlnet_glyph")
tiny_sdxl = _tiny_fixture("sdxl")
tiny_controlnet_sdxl = _tiny_fixture("controlnet_sdxl")


@pytest.fixture
def unique_prefix(request) -> str:
    """A SaveImage filename_prefix unique to this test."""
    return "t_" + request.node.name.replace("[", "_").replace("]", "")[:40] + "_" + uuid.uuid4().hex[:6]
