"""Write tests/data/comfyui_core_nodes.json: the /object_info entries of the ComfyUI core nodes our workflows use.

CI has no ComfyUI, yet the workflow checks need the core nodes' inputs and outputs. This starts a
real ComfyUI (the integration harness's server, empty model folders, CPU) and keeps the answer for
just those nodes. Re-run it when the workflows use a new core node or ComfyUI changes:

    COMFYUI_DIR=/path/to/ComfyUI COMFYUI_PYTHON=/path/to/comfy/python \\
        python tools/snapshot_core_nodes.py
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))

from node_specs import CORE_SNAPSHOT  # noqa: E402
from workflow_graphs import core_node_types  # noqa: E402


def main() -> int:
    from comfy_client import ComfyServer

    root = os.environ.get("COMFYUI_DIR")
    if not root:
        print("set COMFYUI_DIR to a ComfyUI checkout (and COMFYUI_PYTHON to its interpreter)", file=sys.stderr)
        return 2
    base = Path(tempfile.mkdtemp(prefix="glyphsr_snapshot_"))
    server = ComfyServer(Path(root), base)
    try:
        server.start()
        version = server.get("/system_stats")["system"].get("comfyui_version", "unknown")
        nodes = {name: server.object_info(name) for name in sorted(core_node_types())}
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
    CORE_SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
    CORE_SNAPSHOT.write_text(json.dumps({"comfyui_version": version, "nodes": nodes}, indent=1, sort_keys=True) + "\n",
                             encoding="utf-8")
    print(f"wrote {CORE_SNAPSHOT} ({len(nodes)} nodes, ComfyUI {version})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
