"""Soak (a few minutes): 48 small prompts through one real ComfyUI, restore and keep-words
alternating, one in ten cancelled (benchmarks/comfy_soak.py runs 300 and prints the figures).

After warm-up the server's memory stays flat (median RSS of the last 10 prompts within 5% of the
first 10 after warm-up), no model is loaded twice, every file in output/ and temp/ is one a prompt
reported, and every prompt that was not cancelled saved its image.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
import comfy_soak  # noqa: E402

PROMPTS, WARMUP, WINDOW = 48, 12, 10
pytest.importorskip("psutil")


@pytest.fixture(scope="module")
def soak_server():
    """A server of its own: the shared one's earlier model loads and files would blur the counts."""
    base = Path(tempfile.mkdtemp(prefix="glyphsr_soak_"))
    server = comfy_soak.start_server(base, None)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_many_prompts_with_cancels_leave_the_server_as_they_found_it(soak_server):
    result = comfy_soak.soak(soak_server, PROMPTS, cancel_every=10, report_every=10)
    assert len(result.cancelled) == 5  # each cancel landed (prompts 5, 15, 25, 35, 45)
    assert result.missing == []
    first, last, growth = result.growth(WARMUP, WINDOW)
    assert growth <= 0.05, f"RSS grew from {first:.1f} to {last:.1f} MiB after warm-up: {result.rss}"
    assert result.loads and max(result.loads.values()) == 1, result.loads
    assert result.orphans == []
