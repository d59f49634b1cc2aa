"""The API-format workflow that `queue` sends for each input: checked, overridden, re-pointed.

A UI-format file (what the editor's Save writes: "nodes" and "links") cannot be queued; the error
says how to get the API format. The input image goes into one LoadImage node's `image`.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputNotFoundError, InvalidInputError

LOAD_IMAGE = "LoadImage"


@dataclass
class Workflow:
    """An API-format prompt with the id of the LoadImage node that receives each input."""

    path: Path
    prompt: dict
    input_node: str
    note: str = ""  # which LoadImage was chosen when there were several

    def for_image(self, image_name: str) -> dict:
        """A copy of the prompt whose input node loads `image_name` (a name on the server)."""
        prompt = copy.deepcopy(self.prompt)
        prompt[self.input_node]["inputs"]["image"] = image_name
        return prompt

    def key(self) -> str:
        """A short hash of the prompt without the input image: a manifest entry made with another
        workflow (or other --set values) is not a completed input of this one."""
        return hashlib.sha256(json.dumps(self.for_image(""), sort_keys=True).encode()).hexdigest()[:16]


def load_workflow(path: Path, input_node: str | None = None, overrides: list[str] = ()) -> Workflow:
    """Read and check an API-format workflow, apply `--set NODE.INPUT=VALUE` overrides, pick the input node."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"workflow '{path}' does not exist (the API workflows are in workflows/api/)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"workflow '{path}' is not JSON ({exc})") from None
    _check_api_format(path, data)
    for override in overrides:
        _apply_override(data, override)
    node, note = _input_node(path, data, input_node)
    return Workflow(path, data, node, note)


def _check_api_format(path: Path, data) -> None:
    if isinstance(data, dict) and "nodes" in data and "links" in data:
        api_copy = path.parent / "api" / f"{path.stem}.api.json"
        hint = f" (its API copy is {api_copy})" if api_copy.is_file() else " (or use the ones in workflows/api/)"
        raise InvalidInputError(f"workflow '{path}' is in ComfyUI's UI format ('nodes' and 'links'); queue needs "
                                f"the API format: in ComfyUI export it with Save (API){hint}")
    if not isinstance(data, dict) or not data:
        raise InvalidInputError(f"workflow '{path}' is not an API-format workflow (a JSON object of node id -> node)")
    for node_id, node in data.items():
        if not isinstance(node, dict) or "class_type" not in node or not isinstance(node.get("inputs"), dict):
            raise InvalidInputError(f"workflow '{path}' node {node_id!r} has no class_type/inputs: "
                                    f"not an API-format workflow (export with Save (API))")


def _input_node(path: Path, data: dict, wanted: str | None) -> tuple[str, str]:
    loaders = sorted((k for k, n in data.items() if n["class_type"] == LOAD_IMAGE), key=_id_order)
    if wanted is not None:
        if wanted not in loaders:
            raise InvalidInputError(f"--input-node {wanted}: workflow '{path}' has no LoadImage node with that id "
                                    f"(LoadImage nodes: {', '.join(loaders) or 'none'})")
        return wanted, ""
    if not loaders:
        raise InvalidInputError(f"workflow '{path}' has no LoadImage node to feed the inputs to")
    if len(loaders) == 1:
        return loaders[0], ""
    title = data[loaders[0]].get("_meta", {}).get("title", LOAD_IMAGE)
    return loaders[0], (f"workflow has {len(loaders)} LoadImage nodes ({', '.join(loaders)}): the inputs go to node "
                        f"{loaders[0]} ('{title}'), the others keep their image; choose with --input-node")


def _apply_override(data: dict, override: str) -> None:
    """NODE.INPUT=VALUE; VALUE is read as JSON when it parses (numbers, true, lists), else as text."""
    target, sep, raw = override.partition("=")
    node_id, dot, name = target.partition(".")
    if not sep or not dot or not node_id or not name:
        raise InvalidInputError(f"--set {override!r}: expected NODE.INPUT=VALUE, e.g. --set 7.steps=10")
    if node_id not in data:
        raise InvalidInputError(f"--set {override!r}: the workflow has no node {node_id!r} "
                                f"(nodes: {', '.join(sorted(data, key=_id_order))})")
    inputs = data[node_id]["inputs"]
    if name not in inputs:
        raise InvalidInputError(f"--set {override!r}: node {node_id} ({data[node_id]['class_type']}) has no input "
                                f"{name!r} (inputs: {', '.join(inputs)})")
    try:
        inputs[name] = json.loads(raw)
    except ValueError:
        inputs[name] = raw


def _id_order(node_id: str) -> tuple[int, str]:
    return (int(node_id), "") if node_id.isdigit() else (1 << 30, node_id)
