"""Check workflow files against node specs: what ComfyUI would reject, or the frontend show in red.

`check_ui(ui, specs)` and `check_api(prompt, specs)` return a list of problems (empty = fine), each
naming the node and input, so a failing test says what to fix. Specs are /object_info entries
(`node_specs.load_specs()` offline, or a live server's /object_info).
"""

from __future__ import annotations

import math
from typing import Any

from node_specs import (FILE_COMBOS, UI_ONLY_NODES, combo_values, input_entries, input_options, input_type,
                        is_widget, types_compatible, widget_slots)

CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")


def check_value(class_type: str, name: str, entry: list, value: Any) -> str | None:
    """Why `value` does not fit the widget input, or None."""
    kind = input_type(entry)
    options = input_options(entry)
    where = f"{class_type}.{name}"
    if kind == "COMBO":
        if (class_type, name) in FILE_COMBOS:
            return None if isinstance(value, str) and value else f"{where}: expected a file name, got {value!r}"
        values = combo_values(entry)
        return None if value in values else f"{where}: {value!r} is not one of {values}"
    if kind == "BOOLEAN":
        return None if isinstance(value, bool) else f"{where}: expected true/false, got {value!r}"
    if kind == "STRING":
        return None if isinstance(value, str) else f"{where}: expected a string, got {value!r}"
    if kind in ("INT", "FLOAT"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind == "INT" and not isinstance(value, int)):
            return f"{where}: expected {kind}, got {value!r}"
        if not math.isfinite(value):
            return f"{where}: {value!r} is not finite"
        if "min" in options and value < options["min"]:
            return f"{where}: {value} is below the minimum {options['min']}"
        if "max" in options and value > options["max"]:
            return f"{where}: {value} is above the maximum {options['max']}"
        return None
    return f"{where}: {kind} is not a widget type"


def _known(class_type: str, specs: dict, where: str, problems: list[str]) -> dict | None:
    if class_type in specs:
        return specs[class_type]
    problems.append(f"{where}: unknown node type {class_type!r} (not a GlyphSR node nor a ComfyUI core node)")
    return None


def check_ui(ui: dict, specs: dict) -> list[str]:
    problems: list[str] = []
    if ui.get("version") != 0.4:
        problems.append(f"version must be 0.4, got {ui.get('version')!r}")
    nodes = {n["id"]: n for n in ui.get("nodes", [])}
    if len(nodes) != len(ui.get("nodes", [])):
        problems.append("node ids are not unique")
    links = {}
    for link in ui.get("links", []):
        if len(link) != 6:
            problems.append(f"link {link!r} is not [id, origin, origin_slot, target, target_slot, type]")
            continue
        if link[0] in links:
            problems.append(f"link id {link[0]} used twice")
        links[link[0]] = link
    if ui.get("last_node_id", 0) < max(nodes, default=0) or ui.get("last_link_id", 0) < max(links, default=0):
        problems.append("last_node_id / last_link_id lower than ids in use")

    for node in nodes.values():
        where = f"node {node['id']} ({node['type']})"
        if node["type"] in UI_ONLY_NODES:
            values = node.get("widgets_values", [])
            if not (len(values) == 1 and isinstance(values[0], str) and values[0].strip()):
                problems.append(f"{where}: a note needs one text value")
            continue
        spec = _known(node["type"], specs, where, problems)
        if spec is None:
            continue
        entries = {name: (entry, required) for name, entry, required in input_entries(spec)}
        seen = set()
        for slot, ui_input in enumerate(node.get("inputs", [])):
            name = ui_input["name"]
            seen.add(name)
            if name not in entries:
                problems.append(f"{where}: input {name!r} is not an input of the node")
                continue
            entry, _required = entries[name]
            if ui_input.get("type") != input_type(entry):
                problems.append(f"{where}: input {name!r} has type {ui_input.get('type')!r}, node says {input_type(entry)!r}")
            link_id = ui_input.get("link")
            if link_id is None:
                continue
            link = links.get(link_id)
            if link is None:
                problems.append(f"{where}: input {name!r} refers to missing link {link_id}")
                continue
            if link[3] != node["id"] or link[4] != slot:
                problems.append(f"{where}: link {link_id} does not point at input {name!r} (slot {slot})")
            origin = nodes.get(link[1])
            if origin is None or origin["type"] not in specs:
                problems.append(f"{where}: link {link_id} comes from a missing or unknown node {link[1]}")
                continue
            outputs = specs[origin["type"]]["output"]
            if not 0 <= link[2] < len(outputs):
                problems.append(f"{where}: link {link_id} uses output {link[2]} of {origin['type']}, which has {len(outputs)}")
                continue
            if link[5] != outputs[link[2]]:
                problems.append(f"{where}: link {link_id} says type {link[5]!r}, the output is {outputs[link[2]]!r}")
            if not types_compatible(outputs[link[2]], input_type(entry)):
                problems.append(f"{where}: {origin['type']} output {link[2]} ({outputs[link[2]]}) cannot feed "
                                f"{name!r} ({input_type(entry)})")
            origin_out = origin["outputs"][link[2]] if link[2] < len(origin.get("outputs", [])) else {}
            if link_id not in (origin_out.get("links") or []):
                problems.append(f"{where}: link {link_id} is missing from the origin node's output links")
        for name, (entry, required) in entries.items():
            if required and not is_widget(entry) and name not in seen:
                problems.append(f"{where}: required input {name!r} is not on the node")
            if required and not is_widget(entry) and name in seen:
                ui_input = next(i for i in node["inputs"] if i["name"] == name)
                if ui_input.get("link") is None:
                    problems.append(f"{where}: required input {name!r} is not connected")
        for model in node.get("properties", {}).get("models", []):
            if model.get("name") not in node.get("widgets_values", []):
                problems.append(f"{where}: properties.models names {model.get('name')!r}, which no widget selects")
            if not str(model.get("url", "")).startswith("https://") or not model.get("directory"):
                problems.append(f"{where}: properties.models entry {model!r} needs an https url and a directory")
        slots = widget_slots(spec)
        values = node.get("widgets_values", [])
        if len(values) != len(slots):
            problems.append(f"{where}: {len(values)} widget values for {len(slots)} widget slots {slots}")
            continue
        for (name, slot), value in zip(slots, values):
            entry = entries[name][0]
            if slot == "control":
                if value not in CONTROL_VALUES:
                    problems.append(f"{where}: control_after_generate of {name!r} is {value!r}, not one of {CONTROL_VALUES}")
            elif slot == "upload":
                if value != "image":
                    problems.append(f"{where}: upload value of {name!r} is {value!r}, expected 'image'")
            else:
                problem = check_value(node["type"], name, entry, value)
                if problem:
                    problems.append(f"{where}: {problem}")
    for link in links.values():
        if link[3] not in nodes or link[1] not in nodes:
            problems.append(f"link {link[0]} joins a missing node")
    return problems


def check_api(prompt: dict, specs: dict) -> list[str]:
    problems: list[str] = []
    for node_id, node in prompt.items():
        where = f"node {node_id} ({node.get('class_type')})"
        spec = _known(node.get("class_type"), specs, where, problems)
        if spec is None:
            continue
        entries = {name: (entry, required) for name, entry, required in input_entries(spec)}
        for name in node.get("inputs", {}):
            if name not in entries:
                problems.append(f"{where}: {name!r} is not an input of the node")
        for name, (entry, required) in entries.items():
            value = node.get("inputs", {}).get(name)
            if value is None:
                if required:
                    problems.append(f"{where}: required input {name!r} is missing")
                continue
            if isinstance(value, list):
                if len(value) != 2 or str(value[0]) not in prompt:
                    problems.append(f"{where}: {name!r} links to a missing node {value!r}")
                    continue
                origin = prompt[str(value[0])]
                outputs = specs.get(origin["class_type"], {}).get("output", [])
                if not isinstance(value[1], int) or not 0 <= value[1] < len(outputs):
                    problems.append(f"{where}: {name!r} uses output {value[1]!r} of {origin['class_type']}")
                elif not types_compatible(outputs[value[1]], input_type(entry)):
                    problems.append(f"{where}: {origin['class_type']} output {value[1]} ({outputs[value[1]]}) "
                                    f"cannot feed {name!r} ({input_type(entry)})")
            elif not is_widget(entry):
                problems.append(f"{where}: {name!r} needs a link, got the value {value!r}")
            else:
                problem = check_value(node["class_type"], name, entry, value)
                if problem:
                    problems.append(f"{where}: {problem}")
    if not any(specs.get(n.get("class_type"), {}).get("output_node") for n in prompt.values()):
        problems.append("no output node: ComfyUI would refuse the prompt")
    return problems
