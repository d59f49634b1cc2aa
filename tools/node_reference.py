"""The node reference table of docs/nodes.md, rendered from the node classes so it cannot drift.

    python tools/node_reference.py            # print the table
    python tools/node_reference.py --write    # replace docs/nodes.md's section between the markers

tests/test_node_reference.py fails when docs/nodes.md's section differs from this output.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from node_specs import (FILE_COMBOS, combo_values, input_entries, input_options, input_type,  # noqa: E402
                        load_pack, pack_specs)

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "nodes.md"
START, END = "<!-- node-reference:start -->", "<!-- node-reference:end -->"
#: combos whose options come from ComfyUI itself
COMFY_LISTS = {"sampler_name": "ComfyUI's samplers", "scheduler": "ComfyUI's schedulers"}
MAX_DEFAULT_CHARS = 24


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _literal(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return f'"{value}"' if isinstance(value, str) else repr(value)


def describe_input(node_id: str, name: str, entry: list, required: bool) -> str:
    kind = input_type(entry)
    options = input_options(entry)
    if (node_id, name) in FILE_COMBOS:
        detail = FILE_COMBOS[(node_id, name)]
    elif name in COMFY_LISTS and kind == "COMBO":
        detail = COMFY_LISTS[name]
    elif kind == "COMBO":
        detail = " / ".join(str(v) for v in combo_values(entry))
        if "default" in options:
            detail += f" (default {options['default']})"
    else:
        detail = kind
        default = options.get("default")
        if default is not None and not (isinstance(default, str) and (len(default) > MAX_DEFAULT_CHARS or not default)):
            detail += f" = {_literal(default)}"
        if "min" in options and "max" in options and kind in ("INT", "FLOAT") and options["max"] < 2 ** 32:
            detail += f", {options['min']}..{options['max']}"
    text = f"`{name}` {detail}"
    return text if required else f"{text} (optional)"


def render_table(pack=None) -> str:
    pack = pack or load_pack()
    specs = pack_specs(pack)
    rows = ["| Node | Inputs | Outputs | What it does |", "|---|---|---|---|"]
    for node_id, spec in specs.items():
        inputs = "<br>".join(_cell(describe_input(node_id, name, entry, required))
                             for name, entry, required in input_entries(spec))
        outputs = "<br>".join(_cell(f"`{name}` {kind}") for name, kind in zip(spec["output_name"], spec["output"]))
        node = f"**{_cell(spec['display_name'])}**<br>`{node_id}`"
        rows.append(f"| {node} | {inputs} | {outputs} | {_cell(spec['description'])} |")
    return "\n".join(rows) + "\n"


def reference_section(text: str) -> str | None:
    """What docs/nodes.md holds between the markers (None when a marker is missing)."""
    if START not in text or END not in text:
        return None
    return text.split(START, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="replace the docs/nodes.md section between the markers")
    args = parser.parse_args(argv)
    table = render_table()
    if not args.write:
        sys.stdout.write(table)
        return 0
    text = REFERENCE.read_text(encoding="utf-8")
    if reference_section(text) is None:
        print(f"docs/nodes.md needs the markers {START} and {END}", file=sys.stderr)
        return 1
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    REFERENCE.write_text(f"{before}{START}\n{table}{END}{after}", encoding="utf-8")
    print("docs/nodes.md node reference updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
