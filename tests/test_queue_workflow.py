"""The workflow `queue` sends: API format only, which LoadImage gets the inputs, --set overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from glyphsr_core.errors import InputNotFoundError, InvalidInputError
from glyphsr_core.remote import expand_inputs, load_workflow

REPO = Path(__file__).resolve().parent.parent
RESTORE_API = REPO / "workflows" / "api" / "glyphsr_restore_x4.api.json"


def write(tmp_path: Path, data) -> Path:
    path = tmp_path / "wf.api.json"
    path.write_text(json.dumps(data))
    return path


def test_the_restore_workflow_feeds_its_load_image_node():
    workflow = load_workflow(RESTORE_API)
    assert workflow.input_node == "1" and workflow.note == ""
    prompt = workflow.for_image("glyphsr_queue/abc_sign.png")
    assert prompt["1"]["inputs"]["image"] == "glyphsr_queue/abc_sign.png"
    assert workflow.prompt["1"]["inputs"]["image"] == "example.png"  # the template is left alone


def test_several_load_images_take_the_lowest_id_and_say_so(tmp_path):
    data = json.loads(RESTORE_API.read_text())
    data["12"] = {"class_type": "LoadImage", "inputs": {"image": "mask.png"}, "_meta": {"title": "Mask"}}
    workflow = load_workflow(write(tmp_path, data))
    assert workflow.input_node == "1"
    assert "2 LoadImage nodes (1, 12)" in workflow.note and "--input-node" in workflow.note
    assert load_workflow(write(tmp_path, data), input_node="12").input_node == "12"
    with pytest.raises(InvalidInputError, match=r"--input-node 2: .* \(LoadImage nodes: 1, 12\)"):
        load_workflow(write(tmp_path, data), input_node="2")


def test_set_overrides_parse_json_values_and_name_what_is_wrong():
    workflow = load_workflow(RESTORE_API, overrides=["2.tile_size=256", "3.filename_prefix=mine", "2.scale=\"2\""])
    assert workflow.prompt["2"]["inputs"]["tile_size"] == 256
    assert workflow.prompt["3"]["inputs"]["filename_prefix"] == "mine"
    assert workflow.prompt["2"]["inputs"]["scale"] == "2"
    assert workflow.key() != load_workflow(RESTORE_API).key()
    with pytest.raises(InvalidInputError, match="has no node '99'"):
        load_workflow(RESTORE_API, overrides=["99.steps=3"])
    with pytest.raises(InvalidInputError, match=r"node 2 \(GlyphSR_TextRestore\) has no input 'steps'"):
        load_workflow(RESTORE_API, overrides=["2.steps=3"])
    with pytest.raises(InvalidInputError, match="expected NODE.INPUT=VALUE"):
        load_workflow(RESTORE_API, overrides=["steps=3"])


@pytest.mark.parametrize("data, message", [
    ({"nodes": [], "links": []}, "UI format"),
    ([1, 2], "not an API-format workflow"),
    ({"1": {"inputs": {}}}, "node '1' has no class_type"),
    ({"1": {"class_type": "SaveImage", "inputs": {}}}, "has no LoadImage node"),
])
def test_what_is_not_a_queueable_workflow_is_refused(tmp_path, data, message):
    with pytest.raises(InvalidInputError, match=message):
        load_workflow(write(tmp_path, data))
    with pytest.raises(InputNotFoundError, match="workflows/api/"):
        load_workflow(tmp_path / "missing.json")


def test_inputs_that_would_write_the_same_names_are_refused(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "sign.png").write_bytes(b"x")
    with pytest.raises(InvalidInputError, match="would both write outputs named 'sign_\\*'"):
        expand_inputs([str(tmp_path / "a" / "sign.png"), str(tmp_path / "b" / "sign.png")])
    jobs = expand_inputs([str(tmp_path / "a" / "*.png")])  # a glob
    assert [j.stem for j in jobs] == ["sign"]
    with pytest.raises(InputNotFoundError, match="does not exist"):
        expand_inputs([str(tmp_path / "nothing.png")])
