"""Describe a ComfyUI graph once in Python; write it as a UI workflow (litegraph 0.4) and an API prompt.

A `Flow` holds nodes (class type, group, widget values and links by name) and groups (a title and
a note shown inside the group). `to_ui(flow, specs)` lays it out and writes the drag-and-drop
format: positional `widgets_values` (with the extra `control_after_generate` value after seed
widgets and the upload value of image pickers), 6-tuple links, groups with Note nodes inside.
`to_api(flow, specs)` writes the prompt format the server queues: named inputs, links as
`[node_id, output_index]`, no Note nodes. Both read the node specs (`node_specs.load_specs()`), so
slot indices and widget order come from the nodes themselves, and `ui_to_api` converts a UI
workflow back the way the frontend does, for checking the twins describe one graph.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import Any

from node_specs import UI_ONLY_NODES, input_entries, input_type, is_widget, widget_slots

CORE_CNR_ID = "comfy-core"
PACK_CNR_ID = "glyphsr"
NOTE_COLOR, NOTE_BGCOLOR = "#432", "#653"
GROUP_COLOR = "#3f789e"
# Sizes in graph units, as ComfyUI's frontend 1.39 (litegraph) draws them:
TITLE_H = 30  # LiteGraph.NODE_TITLE_HEIGHT: a node's title bar sits above its pos
BADGE_H = 22  # the node-source badge ("GlyphSR", 20 high, 2 above the title) of custom nodes
GROUP_TITLE_H = 34  # a group's title bar: font 24 x 1.4
NODE_WIDTH = 340  # the narrowest node; wider where a widget's label and value need it
CHAR_W = 6.6  # widget text width per character (measured: 5.9-6.5 px at 12 px)
WIDGET_CHROME = 85  # widget margins, arrows and the label-value gap
NODE_GAP, GROUP_PAD, COLUMN_GAP, ROW_GAP = 14, 14, 40, 30
NOTE_MIN_H = 88  # the frontend grows a Note to this

# The view the workflow opens with, at 1920 x 1080: zoom 0.6 (the frontend draws titles, widgets and
# notes from 0.6 up; below it only grey boxes) with graph (0, 0) just right of the sidebar (60 px
# wide) and below the tab bar and the Run toolbar (90 px). SCREEN_SAFE is where nothing of the
# frontend covers the canvas; SCREEN_COVERED lists the corners it does cover (Run toolbar, minimap
# and canvas menu). tests/integration/frontend_load.js measures them again in the real frontend.
VIEW_SCALE = 0.6
SCREEN_ORIGIN = (108.0, 102.0)
VIEW_OFFSET = [SCREEN_ORIGIN[0] / VIEW_SCALE, SCREEN_ORIGIN[1] / VIEW_SCALE]
SCREEN_SAFE = (60.0, 90.0, 1910.0, 1075.0)  # left, top, right, bottom
SCREEN_COVERED = ((1540.0, 0.0, 1920.0, 92.0), (1660.0, 820.0, 1920.0, 1080.0))


@dataclass(frozen=True)
class Out:
    """An output of a node, by name (RETURN_NAMES) or index."""

    node: "Node"
    output: str | int


@dataclass
class Node:
    id: int
    class_type: str
    group: str
    inputs: dict[str, Any]
    title: str | None = None
    control: str = "fixed"  # control_after_generate value for seed widgets
    models: tuple[dict, ...] = ()  # properties.models: [{name, url, directory}] for the missing-model prompt

    def __getitem__(self, output: str | int) -> Out:
        return Out(self, output)


@dataclass
class Group:
    title: str
    note: str
    column: int
    row: int = 0


@dataclass
class Flow:
    name: str
    groups: list[Group] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)

    def group(self, title: str, note: str, column: int, row: int = 0) -> str:
        self.groups.append(Group(title, note, column, row))
        return title

    def add(self, class_type: str, group: str, title: str | None = None, control: str = "fixed",
            models: tuple[dict, ...] = (), **inputs) -> Node:
        if group not in {g.title for g in self.groups}:
            raise ValueError(f"{self.name}: unknown group {group!r}")
        node = Node(len(self.nodes) + 1, class_type, group, inputs, title, control, tuple(models))
        self.nodes.append(node)
        return node

    def class_types(self) -> set[str]:
        return {n.class_type for n in self.nodes}


def output_index(spec: dict, output: str | int, where: str) -> int:
    if isinstance(output, int):
        if not 0 <= output < len(spec["output"]):
            raise ValueError(f"{where}: no output {output}")
        return output
    names = spec.get("output_name") or spec["output"]
    if output in names:
        return names.index(output)
    if output in spec["output"]:
        return spec["output"].index(output)
    raise ValueError(f"{where}: no output named {output!r} (has {names})")


def _check_inputs(flow: Flow, node: Node, spec: dict) -> None:
    known = {name for name, _entry, _req in input_entries(spec)}
    unknown = set(node.inputs) - known
    if unknown:
        raise ValueError(f"{flow.name}: {node.class_type} has no input(s) {sorted(unknown)}")


def _widget_value(node: Node, name: str, entry: list) -> Any:
    if name in node.inputs and not isinstance(node.inputs[name], Out):
        return node.inputs[name]
    options = entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {}
    if "default" in options:
        return options["default"]
    if isinstance(node.inputs.get(name), Out):  # linked: the hidden widget keeps the frontend's empty value
        return {"STRING": "", "INT": 0, "FLOAT": 0.0, "BOOLEAN": False}.get(input_type(entry))
    raise ValueError(f"{node.class_type}.{name}: give a value (no default)")


# ---------------------------------------------------------------------------------------------
# API format


def to_api(flow: Flow, specs: dict) -> dict:
    prompt: dict[str, dict] = {}
    for node in flow.nodes:
        if node.class_type in UI_ONLY_NODES:
            continue
        spec = specs[node.class_type]
        _check_inputs(flow, node, spec)
        inputs: dict[str, Any] = {}
        for name, entry, _required in input_entries(spec):
            value = node.inputs.get(name)
            if isinstance(value, Out):
                where = f"{flow.name}: {node.class_type}.{name}"
                inputs[name] = [str(value.node.id), output_index(specs[value.node.class_type], value.output, where)]
            elif is_widget(entry):
                inputs[name] = _widget_value(node, name, entry)
        prompt[str(node.id)] = {"inputs": inputs, "class_type": node.class_type,
                                "_meta": {"title": node.title or spec.get("display_name") or node.class_type}}
    return prompt


# ---------------------------------------------------------------------------------------------
# UI format


def _multiline(entry: list) -> bool:
    return input_type(entry) == "STRING" and len(entry) > 1 and bool(entry[1].get("multiline"))


def _node_height(node: Node, spec: dict, n_sockets: int, n_outputs: int) -> int:
    """Room for the node's slots and unlinked widgets (at least the frontend's own computeSize)."""
    height = 20 + 20 * max(n_sockets, n_outputs)
    for name, entry, _required in input_entries(spec):
        if is_widget(entry):  # a linked widget stays drawn, disabled, one line high
            linked = isinstance(node.inputs.get(name), Out)
            height += (36 if linked else 84) if _multiline(entry) else 26
    height += {"PreviewImage": 190, "SaveImage": 190, "LoadImage": 210, "PreviewAny": 120}.get(node.class_type, 0)
    return height


def _node_width(node: Node, spec: dict) -> int:
    """Wide enough that no widget's label or value is cut ('ckpt_n...')."""
    width = NODE_WIDTH
    for name, entry, _required in input_entries(spec):
        if not is_widget(entry) or _multiline(entry) or isinstance(node.inputs.get(name), Out):
            continue
        value = _widget_value(node, name, entry)
        text = str(value).lower() if isinstance(value, bool) else str(value)
        width = max(width, math.ceil((CHAR_W * (len(name) + len(text)) + WIDGET_CHROME) / 10) * 10)
    return width


def note_height(text: str, width: int) -> int:
    """A Note tall enough for its text without a scroll bar (13 px text, 17 px lines)."""
    per_line = max(1, int((width - 30) / 6.4))
    lines = sum(max(1, math.ceil(len(paragraph) / per_line)) for paragraph in text.split("\n"))
    return max(NOTE_MIN_H, 34 + 17 * lines)


#: core nodes ComfyUI files under "_for_testing": the frontend draws a "[BETA]" badge above them (seen in
#: its screenshots), as high as a custom node's source badge
BETA_BADGE_NODES = {"VAEEncodeTiled", "VAEDecodeTiled"}


def head_height(class_type: str) -> int:
    """What the frontend draws above a node's pos: the title bar, and the source badge of custom nodes
    (or the [BETA] badge of testing-category core nodes)."""
    badged = class_type.startswith("GlyphSR_") or class_type in BETA_BADGE_NODES
    return TITLE_H + (BADGE_H if badged else 0)


def _topological_order(flow: Flow) -> dict[int, int]:
    order: dict[int, int] = {}

    def visit(node: Node, stack: tuple[int, ...] = ()) -> None:
        if node.id in order:
            return
        if node.id in stack:
            raise ValueError(f"{flow.name}: cycle through node {node.id}")
        for value in node.inputs.values():
            if isinstance(value, Out):
                visit(value.node, stack + (node.id,))
        order[node.id] = len(order)

    for node in flow.nodes:
        visit(node)
    return order


def to_ui(flow: Flow, specs: dict) -> dict:
    """The drag-and-drop workflow: nodes laid out in their groups, each group led by a Note."""
    order = _topological_order(flow)
    ui_nodes: dict[int, dict] = {}
    links: list[list] = []
    next_id = len(flow.nodes) + 1
    notes: list[tuple[Group, int]] = []
    for group in flow.groups:  # one Note per group, numbered after the graph's nodes
        notes.append((group, next_id))
        next_id += 1

    for node in flow.nodes:
        spec = specs[node.class_type]
        _check_inputs(flow, node, spec)
        # sockets first, then widgets fed by a link (as the frontend appends converted widgets)
        ui_inputs = [{"name": name, "type": input_type(entry), "link": None}
                     for name, entry, _required in input_entries(spec) if not is_widget(entry)]
        ui_inputs += [{"name": name, "type": input_type(entry), "widget": {"name": name}, "link": None}
                      for name, entry, _required in input_entries(spec)
                      if is_widget(entry) and isinstance(node.inputs.get(name), Out)]
        values = []
        for name, slot in widget_slots(spec):
            entry = next(e for n, e, _r in input_entries(spec) if n == name)
            values.append(_widget_value(node, name, entry) if slot == "value" else
                          node.control if slot == "control" else "image")
        names = spec.get("output_name") or spec["output"]
        ui_outputs = [{"name": n, "type": t, "links": [], "slot_index": i}
                      for i, (n, t) in enumerate(zip(names, spec["output"]))]
        ui_nodes[node.id] = {
            "id": node.id, "type": node.class_type, "pos": [0, 0], "size": [NODE_WIDTH, 0], "flags": {},
            "order": order[node.id], "mode": 0, "inputs": ui_inputs, "outputs": ui_outputs,
            "properties": {"cnr_id": PACK_CNR_ID if node.class_type.startswith("GlyphSR_") else CORE_CNR_ID,
                           "Node name for S&R": node.class_type},
            "widgets_values": values,
        }
        if node.title:
            ui_nodes[node.id]["title"] = node.title
        if node.models:
            ui_nodes[node.id]["properties"]["models"] = [dict(m) for m in node.models]

    for node in flow.nodes:  # links, numbered in node then input order
        target = ui_nodes[node.id]
        for slot, ui_input in enumerate(target["inputs"]):
            value = node.inputs.get(ui_input["name"])
            if not isinstance(value, Out):
                continue
            origin_spec = specs[value.node.class_type]
            index = output_index(origin_spec, value.output, f"{flow.name}: {node.class_type}.{ui_input['name']}")
            link_id = len(links) + 1
            link_type = origin_spec["output"][index]
            links.append([link_id, value.node.id, index, node.id, slot, link_type])
            ui_input["link"] = link_id
            ui_nodes[value.node.id]["outputs"][index]["links"].append(link_id)

    groups_ui = _layout(flow, specs, ui_nodes, notes)
    all_nodes = [ui_nodes[n.id] for n in flow.nodes]
    for group, note_id in notes:
        all_nodes.append(ui_nodes[note_id])
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"glyphsr/workflows/{flow.name}")),
        "revision": 0,
        "last_node_id": max(ui_nodes),
        "last_link_id": len(links),
        "nodes": all_nodes,
        "links": links,
        "groups": groups_ui,
        "config": {},
        "extra": {"ds": {"scale": VIEW_SCALE, "offset": [round(v, 2) for v in VIEW_OFFSET]}},
        "version": 0.4,
    }


def _layout(flow: Flow, specs: dict, ui_nodes: dict[int, dict], notes: list[tuple[Group, int]]) -> list[dict]:
    """Groups on a grid (column, row); inside a group its Note first, then its nodes top to bottom.

    Each node is as wide as its column's widest need; between nodes there is room for the next
    one's title bar and badge, and a group's title bar is clear of its first node's.
    """
    members_of = {g.title: [n for n in flow.nodes if n.group == g.title] for g in flow.groups}
    column_width: dict[int, int] = {}
    for group in flow.groups:
        for node in members_of[group.title]:
            width = _node_width(node, specs[node.class_type])
            column_width[group.column] = max(column_width.get(group.column, NODE_WIDTH), width)
    column_x: dict[int, int] = {}
    x = 0
    for column in sorted(column_width):
        column_x[column] = x
        x += column_width[column] + 2 * GROUP_PAD + COLUMN_GAP
    row_y: dict[tuple[int, int], int] = {}
    groups_ui = []
    for group, note_id in sorted(notes, key=lambda gn: (gn[0].column, gn[0].row)):
        gx, width = column_x[group.column], column_width[group.column]
        gy = row_y.get((group.column, group.row - 1), 0)
        y = gy + GROUP_TITLE_H + 8  # top of the first node's title bar
        note_h = note_height(group.note, width)
        ui_nodes[note_id] = {
            "id": note_id, "type": "Note", "pos": [gx + GROUP_PAD, y + TITLE_H], "size": [width, note_h],
            "flags": {}, "order": len(flow.nodes) + len(groups_ui), "mode": 0, "inputs": [], "outputs": [],
            "properties": {}, "widgets_values": [group.note], "color": NOTE_COLOR, "bgcolor": NOTE_BGCOLOR,
        }
        y += TITLE_H + note_h + NODE_GAP
        for node in members_of[group.title]:
            member = ui_nodes[node.id]
            height = _node_height(node, specs[node.class_type], len(member["inputs"]), len(member["outputs"]))
            y += head_height(node.class_type)
            member["pos"] = [gx + GROUP_PAD, y]
            member["size"] = [width, height]
            y += height + NODE_GAP
        height = y - NODE_GAP + GROUP_PAD - gy
        groups_ui.append({"id": len(groups_ui) + 1, "title": group.title,
                          "bounding": [gx, gy, width + 2 * GROUP_PAD, height],
                          "color": GROUP_COLOR, "font_size": 24, "flags": {}})
        row_y[(group.column, group.row)] = gy + height + ROW_GAP
    return groups_ui


def drawn_areas(ui: dict) -> dict[int, list[float]]:
    """Node id -> [x, y, w, h] of what the frontend draws for it: body, title bar and badge."""
    areas = {}
    for node in ui["nodes"]:
        head = head_height(node["type"])
        (x, y), (w, h) = node["pos"], node["size"]
        areas[node["id"]] = [x, y - head, w, h + head]
    return areas


def to_screen(ui: dict, rect: list[float]) -> list[float]:
    """[x, y, w, h] in graph units -> screen pixels [left, top, right, bottom] in the saved view."""
    ds = ui["extra"]["ds"]
    scale, (ox, oy) = ds["scale"], ds["offset"]
    x, y, w, h = rect
    return [(x + ox) * scale, (y + oy) * scale, (x + w + ox) * scale, (y + h + oy) * scale]


# ---------------------------------------------------------------------------------------------
# reading a UI workflow back


def ui_to_api(ui: dict, specs: dict) -> dict:
    """The prompt the frontend would queue for a UI workflow (0.4 links, no bypass/mute handling)."""
    links = {link[0]: link for link in ui["links"]}
    prompt = {}
    for node in ui["nodes"]:
        if node["type"] in UI_ONLY_NODES:
            continue
        spec = specs[node["type"]]
        linked = {i["name"]: links[i["link"]] for i in node.get("inputs", []) if i.get("link") is not None}
        values = iter(node.get("widgets_values", []))
        widget_values = {}
        for name, slot in widget_slots(spec):
            value = next(values)
            if slot == "value":
                widget_values[name] = value
        inputs = {}
        for name, entry, _required in input_entries(spec):
            if name in linked:
                link = linked[name]
                inputs[name] = [str(link[1]), link[2]]
            elif is_widget(entry):
                inputs[name] = widget_values[name]
        prompt[str(node["id"])] = {"inputs": inputs, "class_type": node["type"],
                                   "_meta": {"title": node.get("title") or spec.get("display_name") or node["type"]}}
    return prompt
