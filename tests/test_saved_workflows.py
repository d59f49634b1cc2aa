"""Workflows people saved keep loading and running: frozen copies of the six shipped workflows (UI
files and API twins, as released in 0.1.0) and of every node's inputs are checked against today's
node classes.

`tests/data/saved_workflows/` is a fixture: never regenerate it. If a test here fails, a node id,
class, input name, type, default or range changed, and saved workflows would break (add a new input
or a new node instead).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import node_specs  # noqa: E402
from workflow_check import check_api, check_ui  # noqa: E402
from workflow_format import ui_to_api  # noqa: E402

SAVED = Path(__file__).resolve().parent / "data" / "saved_workflows"
NAMES = ["glyphsr_no_vlm", "glyphsr_ocr_prompts", "glyphsr_restore_x4", "glyphsr_sd15_x4", "glyphsr_sdxl_x4",
         "glyphsr_sdxl_x4_tiled"]
FROZEN_NODES = json.loads((SAVED / "glyphsr_nodes.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def specs(pack):
    return node_specs.load_specs(pack)


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_fixture_holds_all_six_workflows_in_both_formats():
    assert sorted(p.stem for p in SAVED.glob("glyphsr_*_*.json") if p.stem != "glyphsr_nodes") == NAMES
    assert sorted(p.name.removesuffix(".api.json") for p in (SAVED / "api").glob("*.api.json")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_saved_ui_workflow_loads(name, specs):
    assert check_ui(_load(SAVED / f"{name}.json"), specs) == []


@pytest.mark.parametrize("name", NAMES)
def test_saved_api_workflow_is_accepted(name, specs):
    assert check_api(_load(SAVED / "api" / f"{name}.api.json"), specs) == []


@pytest.mark.parametrize("name", NAMES)
def test_saved_ui_widgets_still_land_on_the_same_inputs(name, specs):
    """The frontend maps a saved UI file's widget values to inputs by position: converted with today's
    node specs, each saved UI file must give exactly its saved API twin."""
    assert ui_to_api(_load(SAVED / f"{name}.json"), specs) == _load(SAVED / "api" / f"{name}.api.json")


def test_node_ids_and_classes_are_unchanged(pack):
    """Every released node is still there under its id (new nodes may join: Keep Words did in 0.2)."""
    missing = sorted(set(FROZEN_NODES) - set(pack.NODE_CLASS_MAPPINGS))
    assert missing == [], f"released nodes gone: {missing}"
    for node_id in FROZEN_NODES:
        cls = pack.NODE_CLASS_MAPPINGS[node_id]
        assert (cls.__name__, cls.FUNCTION) == (FROZEN_NODES[node_id]["class"], FROZEN_NODES[node_id]["function"])
        assert pack.NODE_DISPLAY_NAME_MAPPINGS[node_id] == FROZEN_NODES[node_id]["display_name"]


@pytest.mark.parametrize("node_id", sorted(FROZEN_NODES))
def test_node_inputs_types_and_defaults_are_unchanged(node_id, pack):
    spec = node_specs.pack_specs(pack)[node_id]
    frozen = FROZEN_NODES[node_id]
    entries = node_specs.input_entries(spec)
    assert [name for name, _, _ in entries] == list(frozen["inputs"]), "inputs renamed, added or reordered"
    for name, entry, required in entries:
        want = frozen["inputs"][name]
        assert node_specs.input_type(entry) == want["type"] and required == want["required"], name
        options = node_specs.input_options(entry)
        for key in ("default", "min", "max", "step"):
            assert options.get(key) == want.get(key), f"{node_id}.{name}: {key}"
        if "values" in want:
            assert node_specs.combo_values(entry) == want["values"], f"{node_id}.{name}: options"
    assert list(spec["output"]) == frozen["outputs"] and list(spec["output_name"]) == frozen["output_names"]
