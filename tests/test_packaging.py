"""The pack loads the way ComfyUI loads it, stays light, and keeps the core free of ComfyUI."""

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMFY_IMPORT = re.compile(r"^\s*(import|from)\s+(comfy|comfy_extras|comfy_api|folder_paths|nodes|server|latent_preview|node_helpers)\b",
                          re.MULTILINE)


def test_core_never_imports_comfyui():
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "glyphsr_core").rglob("*.py") if COMFY_IMPORT.search(p.read_text())]
    assert offenders == []


def test_core_imports_without_comfyui_or_heavy_packages():
    code = (
        "import sys, glyphsr_core.types, glyphsr_core.ocr, glyphsr_core.text.prompts, glyphsr_core.text.glyphs, "
        "glyphsr_core.sampling.colorfix, glyphsr_core.cli\n"
        "glyphsr_core.cli.build_parser()\n"
        "heavy = [m for m in ('comfy', 'folder_paths', 'rapidocr', 'onnxruntime', 'transformers', 'diffusers') if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_pack_loads_without_rapidocr_and_ocr_node_says_what_to_install(tmp_path):
    blocker = tmp_path / "rapidocr"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ImportError('No module named onnxruntime')\n")
    code = (
        "import sys, numpy as np, torch\n"
        f"sys.path[:0] = [{str(tmp_path)!r}, {str(REPO / 'tests')!r}]\n"
        "import conftest\n"
        "pack = conftest.load_pack()\n"
        "node = pack.NODE_CLASS_MAPPINGS['GlyphSR_OCRExtract']()\n"
        "try:\n"
        "    node.extract(torch.ones(1, 64, 64, 3), 0.5, 'auto', 0)\n"
        "except RuntimeError as exc:\n"
        "    print('ERR', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": ""})
    assert "ERR" in out.stdout and "pip install rapidocr onnxruntime" in out.stdout


def test_registry_metadata():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "comfyui" not in meta["project"]["name"].lower()
    assert re.fullmatch(r"\d+\.\d+\.\d+", meta["project"]["version"])
    assert meta["project"]["urls"]["Repository"]
    assert {"PublisherId", "DisplayName", "Icon"} <= set(meta["tool"]["comfy"])


def test_the_test_command_works_in_a_checkout_named_like_the_pack(tmp_path):
    """`git clone …/ComfyUI-GlyphSR` gives a folder whose name is no Python identifier; pytest then
    imports its `__init__.py` as a plain module, which must not fail (it did: every test errored)."""
    import shutil

    checkout = tmp_path / "ComfyUI-GlyphSR"
    keep = ("__init__.py", "pyproject.toml", "nodes", "glyphsr_core", "tests")
    checkout.mkdir()
    for name in keep:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, checkout / name, ignore=shutil.ignore_patterns("__pycache__", "data"))
        else:
            shutil.copy2(source, checkout / name)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_types.py"],
                          cwd=checkout, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""})
    assert done.returncode == 0, done.stdout[-2000:]
    assert re.search(r"\d+ passed", done.stdout) and "error" not in done.stdout.lower()
