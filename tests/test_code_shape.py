"""The shape of the code, checked statically (docs/ARCHITECTURE.md describes it).

- every function in `glyphsr_core/` and `nodes/` fits on a screen (at most 70 lines, decorators included);
- `glyphsr_core` has no import cycle, counting imports inside functions too;
- imports only run downwards: the building blocks never import the orchestration (`method`) or the
  commands, the orchestration never imports a command, and the core never imports the node package
  or ComfyUI;
- the core keeps at most 8 top-level modules beside its subpackages.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORE = REPO / "glyphsr_core"
MAX_FUNCTION_LINES = 70
#: functions allowed to be longer for now, each with its reason
LONG_FUNCTION_EXCEPTIONS: set[tuple[str, str]] = set()


def _python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (REPO / folder).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def long_functions(paths: list[Path], limit: int = MAX_FUNCTION_LINES, root: Path = REPO) -> list[tuple[str, str, int]]:
    """(file, function, lines) of every function longer than `limit` lines."""
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                lines = node.end_lineno - start + 1
                if lines > limit:
                    found.append((path.relative_to(root).as_posix(), node.name, lines))
    return found


def import_graph(paths: list[Path]) -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere in its text (functions included)."""
    modules = {_module_name(p): p for p in paths}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[:len(package) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                candidates = [target] + [f"{target}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            else:
                continue
            edges.update(c for c in candidates if c in modules and c != name)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def test_no_function_is_longer_than_a_screen():
    found = long_functions(_python_files("glyphsr_core", "nodes"))
    too_long = [f for f in found if (f[0], f[1]) not in LONG_FUNCTION_EXCEPTIONS]
    assert too_long == [], f"split these into setup / loop / save steps (at most {MAX_FUNCTION_LINES} lines): {too_long}"


def test_the_length_check_finds_a_long_function(tmp_path):
    long = tmp_path / "long.py"
    long.write_text("@decorated\ndef f():\n" + "    x = 1\n" * 69 + "\n\ndef g():\n    return 1\n", encoding="utf-8")
    (tmp_path / "ok.py").write_text("def h():\n" + "    x = 1\n" * 69, encoding="utf-8")
    assert long_functions([long, tmp_path / "ok.py"], limit=70, root=tmp_path) == [("long.py", "f", 71)]


def test_core_has_no_import_cycle():
    graph = import_graph(_python_files("glyphsr_core"))
    assert len(graph) > 50 and any(graph.values())  # the graph was read
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize("importer, forbidden", [
    # building blocks -> never the orchestration or the commands
    (lambda m: not m.startswith(("glyphsr_core.commands", "glyphsr_core.method", "glyphsr_core.cli",
                                 "glyphsr_core.__main__", "glyphsr_core.training")), "glyphsr_core.method"),
    (lambda m: not m.startswith(("glyphsr_core.commands", "glyphsr_core.cli")), "glyphsr_core.commands"),
])
def test_imports_only_run_downwards(importer, forbidden):
    graph = import_graph(_python_files("glyphsr_core"))
    upward = sorted(f"{m} -> {t}" for m, targets in graph.items() if importer(m)
                    for t in targets if t == forbidden or t.startswith(forbidden + "."))
    assert upward == []


def test_core_never_imports_the_node_package_or_comfyui():
    offenders = []
    for path in _python_files("glyphsr_core"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            bad = [n for n in names if n.split(".")[0] in ("comfy", "folder_paths", "nodes", "comfy_extras",
                                                           "latent_preview", "node_helpers")]
            bad += ["..nodes"] if isinstance(node, ast.ImportFrom) and node.level >= 2 and \
                (node.module or "").startswith("nodes") else []
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in bad]
    assert offenders == []


def test_core_keeps_at_most_eight_top_level_modules():
    modules = sorted(p.name for p in CORE.glob("*.py"))
    assert len(modules) <= 8, modules
    packages = sorted(p.name for p in CORE.iterdir() if (p / "__init__.py").is_file())
    for expected in ("commands", "diffusion", "guard", "ocr", "restore", "sampling", "text", "tiling", "training",
                     "tscontrolnet", "vlm", "data"):
        assert expected in packages


def test_every_cli_command_is_a_module_named_after_it():
    from glyphsr_core.cli import COMMANDS

    for command, (module, _help) in COMMANDS.items():
        assert module == f"glyphsr_core.commands.{command.replace('-', '_')}"
        assert (CORE / "commands" / f"{command.replace('-', '_')}.py").is_file()
