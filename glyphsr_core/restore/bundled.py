"""Where the shipped restorer lives (no torch import: `analyze --help` must stay light)."""

from __future__ import annotations

from pathlib import Path

#: the file shipped inside the pack (its card: docs/text-restore.md)
BUNDLED_NAME = "glyphsr_text_restore_x4.safetensors"
BUNDLED_PATH = Path(__file__).resolve().parents[2] / "models" / "upscale_models" / BUNDLED_NAME
