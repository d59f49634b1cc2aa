"""docs/nodes.md's node reference is the table rendered from the node classes (tools/node_reference.py);
README.md lists every node and links there."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import node_reference  # noqa: E402


def test_table_lists_every_node_with_inputs_and_outputs(pack):
    table = node_reference.render_table(pack)
    rows = table.strip().splitlines()[2:]
    assert len(rows) == len(pack.NODE_CLASS_MAPPINGS)
    for (node_id, cls), row in zip(pack.NODE_CLASS_MAPPINGS.items(), rows):
        assert f"`{node_id}`" in row and pack.NODE_DISPLAY_NAME_MAPPINGS[node_id] in row
        assert row.count("|") - row.count("\\|") == 5, row  # four cells, pipes in text escaped
        for name in cls.INPUT_TYPES().get("required", {}):
            assert f"`{name}`" in row
    fidelity = next(r for r in rows if "`GlyphSR_TextFidelity`" in r)
    assert "`text` GLYPHSR_TEXT (optional)" in fidelity and "`f1` FLOAT" in fidelity
    assert "`min_overlap` FLOAT = 0.3, 0.01..1.0" in fidelity


def test_reference_section_is_the_generated_table(pack):
    text = node_reference.REFERENCE.read_text(encoding="utf-8")
    section = node_reference.reference_section(text)
    assert section is not None, f"docs/nodes.md lacks {node_reference.START} ... {node_reference.END}"
    assert section == node_reference.render_table(pack), "run: python tools/node_reference.py --write"


def test_readme_names_every_node_and_links_the_reference(pack):
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert "docs/nodes.md" in text
    for name in pack.NODE_DISPLAY_NAME_MAPPINGS.values():
        assert name in text, name
