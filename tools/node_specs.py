"""Node specs in ComfyUI's `/object_info` shape, without a running ComfyUI.

GlyphSR nodes come from the pack's classes (loaded against tests/comfy_standin/ when ComfyUI is not
installed); ComfyUI core nodes come from `tests/data/comfyui_core_nodes.json`, a snapshot of the
`/object_info` entries of the core nodes our workflows use, written by
`tools/snapshot_core_nodes.py` from a real ComfyUI. The workflow generator, the workflow
checks and the node reference all read specs through `load_specs()`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
CORE_SNAPSHOT = REPO_ROOT / "tests" / "data" / "comfyui_core_nodes.json"

#: nodes the frontend draws but the server never sees (absent from /object_info and API prompts)
UI_ONLY_NODES = frozenset({"Note", "MarkdownNote"})
#: widget types; every other input type is a socket (links only)
WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
#: combos listing files of this installation: a workflow may name any file, so any string fits
FILE_COMBOS: dict[tuple[str, str], str] = {
    ("CheckpointLoaderSimple", "ckpt_name"): "a checkpoint in models/checkpoints",
    ("LoadImage", "image"): "an image in ComfyUI's input folder",
    ("UpscaleModelLoader", "model_name"): "a file in models/upscale_models",
    ("GlyphSR_VLMLoader", "model"): "a model folder in models/LLM or models/vlm",
    ("GlyphSR_TSControlNetLoader", "control_net_name"): "a file in models/controlnet",
    ("GlyphSR_TSControlNetLoader", "second_control_net"): "None, 'shared: scene weights', or a file in "
                                                           "models/controlnet",
}


def _plain(value: Any) -> Any:
    """JSON round trip: tuples become lists, as in the /object_info answer."""
    return json.loads(json.dumps(value))


def class_object_info(node_id: str, cls: type, display_name: str) -> dict:
    """The /object_info entry ComfyUI builds for a V1 node class (the fields we rely on)."""
    inputs = _plain(cls.INPUT_TYPES())
    outputs = list(cls.RETURN_TYPES)
    return {
        "input": inputs,
        "input_order": {section: list(entries) for section, entries in inputs.items()},
        "output": outputs,
        "output_name": list(getattr(cls, "RETURN_NAMES", None) or outputs),
        "output_is_list": list(getattr(cls, "OUTPUT_IS_LIST", None) or [False] * len(outputs)),
        "name": node_id,
        "display_name": display_name,
        "description": getattr(cls, "DESCRIPTION", ""),
        "category": cls.CATEGORY,
        "output_node": bool(getattr(cls, "OUTPUT_NODE", False)),
    }


def load_pack():
    """The repository imported as a node pack (against the comfy stand-in unless real comfy is importable)."""
    tests_dir = str(REPO_ROOT / "tests")
    if tests_dir not in sys.path:
        sys.path.insert(0, tests_dir)
    from conftest import load_pack as _load_pack

    return _load_pack()


def pack_specs(pack=None) -> dict[str, dict]:
    pack = pack or load_pack()
    return {node_id: class_object_info(node_id, cls, pack.NODE_DISPLAY_NAME_MAPPINGS.get(node_id, node_id))
            for node_id, cls in pack.NODE_CLASS_MAPPINGS.items()}


def core_specs() -> dict[str, dict]:
    return json.loads(CORE_SNAPSHOT.read_text(encoding="utf-8"))["nodes"]


def load_specs(pack=None) -> dict[str, dict]:
    """GlyphSR and snapshotted core node specs, keyed by class_type."""
    return {**core_specs(), **pack_specs(pack)}


# ---------------------------------------------------------------------------------------------
# reading one input's spec


def input_entries(spec: dict) -> list[tuple[str, list, bool]]:
    """(name, [type, options?], required) of every input in the order the frontend builds them."""
    order = spec.get("input_order") or {s: list(v) for s, v in spec["input"].items()}
    entries = []
    for section in ("required", "optional"):
        for name in order.get(section, []):
            entries.append((name, spec["input"][section][name], section == "required"))
    return entries


def input_type(entry: list) -> str:
    """'COMBO' for list or V3 combos, else the declared type (which may be '*' or 'A,B')."""
    kind = entry[0]
    return "COMBO" if isinstance(kind, list) else kind


def input_options(entry: list) -> dict:
    return entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {}


def combo_values(entry: list) -> list:
    kind = entry[0]
    if isinstance(kind, list):
        return kind
    return list(input_options(entry).get("options", []))


def is_widget(entry: list) -> bool:
    return input_type(entry) in WIDGET_TYPES and not input_options(entry).get("forceInput", False)


def widget_slots(spec: dict) -> list[tuple[str, str]]:
    """The node's `widgets_values` layout: (input name, 'value' | 'control' | 'upload') per position.

    Seed-like INT inputs carry a `control_after_generate` value right after their own (the frontend
    adds that widget for `control_after_generate` and, without the option, for INTs named seed or
    noise_seed), and image-upload combos (LoadImage) an 'image' value for the upload button.
    """
    slots = []
    for name, entry, _required in input_entries(spec):
        if not is_widget(entry):
            continue
        slots.append((name, "value"))
        options = input_options(entry)
        seed_like = input_type(entry) == "INT" and name in ("seed", "noise_seed")
        if options.get("control_after_generate", seed_like):
            slots.append((name, "control"))
        if options.get("image_upload"):
            slots.append((name, "upload"))
    return slots


def types_compatible(output_type: str, input_type_name: str) -> bool:
    """ComfyUI's rule: equal, '*' on either side, or one of a comma-separated list of types."""
    if output_type == "*" or input_type_name == "*":
        return True
    accepted = {t.strip() for t in input_type_name.split(",")}
    offered = {t.strip() for t in output_type.split(",")}
    return bool(accepted & offered)
