"""Soak: many small prompts through one real ComfyUI server; prints the server's memory curve.

Alternates the restore (workflows/api/glyphsr_restore_x4) and keep-words (glyphsr_keep_words)
workflows on small text images, one distinct image per prompt (so that ComfyUI's cache never answers
for the pack), and cancels some prompts (POST /interrupt once the Text Restore node starts). Prints:
the server's RSS every --report-every prompts and its growth after warm-up (median of the first
window after warm-up vs median of the last window), the models the server loaded ("Requested to
load" lines of ComfyUI's model manager: each should appear once; that covers the pack's Text Restore
net, while Load Upscale Model and the pack's OCR engine log nothing), files in the server's
output/temp folders that no prompt reported (should be none), and non-cancelled prompts without
their image.

    COMFYUI_DIR=/path/to/ComfyUI /path/to/comfy/python benchmarks/comfy_soak.py [--prompts 300]
        [--cancel-every 10] [--warmup 30] [--upscaler RealESRGAN_x4plus.pth]

Without --upscaler, keep-words uses a tiny random compact upscaler installed under the workflow's
file name. tests/integration/test_comfy_soak.py runs the same with fewer prompts and asserts.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
API_DIR = REPO / "workflows" / "api"
for _path in (REPO, REPO / "tests", REPO / "tests" / "integration"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

WORKFLOWS = ("glyphsr_restore_x4", "glyphsr_keep_words")
UPSCALER = "RealESRGAN_x4plus.pth"
WORDS = ["OPEN", "EXIT", "SALE", "CAFE", "PARK", "STOP", "HOTEL", "BANK", "TAXI", "BOOKS", "MARKET", "PHARMACY"]


@dataclass
class SoakResult:
    rss: list[tuple[int, float]] = field(default_factory=list)  # (prompts done, server RSS MiB)
    cancelled: list[int] = field(default_factory=list)  # prompts that ended interrupted
    missing: list[str] = field(default_factory=list)  # non-cancelled prompts without their saved image
    loads: Counter = field(default_factory=Counter)  # model class -> "Requested to load" lines
    orphans: list[str] = field(default_factory=list)  # files in output/ or temp/ that no prompt reported
    seconds: float = 0.0

    def growth(self, warmup: int, window: int) -> tuple[float, float, float]:
        """(median MiB of the first window after warm-up, of the last window, relative growth)."""
        after = [mib for done, mib in self.rss if done > warmup]
        first, last = statistics.median(after[:window]), statistics.median(after[-window:])
        return first, last, last / first - 1.0


def tiny_upscaler(folder: Path) -> Path:
    """A random compact x4 net saved as a .pth state dict (spandrel reads it as SRVGGNetCompact)."""
    import torch

    from glyphsr_core.restore.compact import CompactSR

    torch.manual_seed(0)
    path = folder / UPSCALER
    torch.save(CompactSR(num_feat=16, num_conv=2, scale=4).state_dict(), path)
    return path


def make_image(folder: Path, index: int) -> str:
    """A distinct 96x32 sign: a word and the prompt's number."""
    from textimages import render_words

    image, _ = render_words([[WORDS[index % len(WORDS)], str(index)]], size=(96, 32), font_size=14, origin=(3, 8))
    name = f"soak_{index:04d}.png"
    image.save(folder / name)
    return name


def prompt_for(workflow: str, image: str) -> dict:
    prompt = copy.deepcopy(json.loads((API_DIR / f"{workflow}.api.json").read_text(encoding="utf-8")))
    for node in prompt.values():
        if node["class_type"] == "LoadImage":
            node["inputs"]["image"] = image
        if node["class_type"] == "GlyphSR_KeepWords":
            node["inputs"]["steps"] = 3
    return prompt


def run_one(server, prompt: dict, cancel: bool) -> tuple[bool, dict]:
    """Queue one prompt (cancelled once node 2, Text Restore, starts when `cancel`); returns
    (interrupted, its /history entry)."""
    from comfy_client import ComfyInterrupted

    def interrupt_at_restore(msg: dict) -> None:
        data = msg.get("data") or {}
        if msg["type"] == "executing" and data.get("node") == "2":
            server.post("/interrupt", {"prompt_id": data["prompt_id"]})

    try:
        result = server.queue(prompt, on_message=interrupt_at_restore if cancel else None)
    except ComfyInterrupted as stopped:
        return True, server.history(stopped.payload["prompt_id"])
    return False, result.history


def soak(server, prompts: int, cancel_every: int, report_every: int, out=print) -> SoakResult:
    """Run the prompts on a started `comfy_client.ComfyServer`; the caller checks the result."""
    import psutil

    process = psutil.Process(server.process.pid)
    result, reported = SoakResult(), set()
    started = time.monotonic()
    for i in range(prompts):
        workflow = WORKFLOWS[i % len(WORKFLOWS)]
        cancel = cancel_every > 0 and i % cancel_every == cancel_every // 2
        interrupted, entry = run_one(server, prompt_for(workflow, make_image(server.input_dir, i)), cancel)
        items = [item for node in entry.get("outputs", {}).values() for item in node.get("images", [])]
        reported.update(str(server.file_path(item)) for item in items)
        saved = [item for item in items if item.get("type") == "output"]
        if interrupted:
            result.cancelled.append(i)
        elif len(saved) != 1 or not server.file_path(saved[0]).is_file():
            result.missing.append(f"prompt {i} ({workflow}): saved {saved}")
        result.rss.append((i + 1, process.memory_info().rss / 2**20))
        if (i + 1) % report_every == 0 or i + 1 == prompts:
            out(f"  {i + 1:4d} prompts  RSS {result.rss[-1][1]:7.1f} MiB  {time.monotonic() - started:6.1f} s")
    result.seconds = time.monotonic() - started
    result.loads = Counter(re.findall(r"Requested to load (\w+)", server.log_text()))
    on_disk = {str(p) for folder in (server.output_dir, server.temp_dir) for p in folder.rglob("*") if p.is_file()}
    result.orphans = sorted(on_disk - reported)
    return result


def start_server(base: Path, upscaler: Path | None):
    import os

    from comfy_client import ComfyServer

    root = os.environ.get("COMFYUI_DIR")
    if not root or not (Path(root) / "main.py").is_file():
        sys.exit("set COMFYUI_DIR to a ComfyUI checkout and run this with ComfyUI's python")
    server = ComfyServer(Path(root), base)
    server.prepare()
    source = upscaler or tiny_upscaler(base)
    shutil.copy(source, server.models_dir / "upscale_models" / UPSCALER)
    server.start()
    return server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=300)
    parser.add_argument("--cancel-every", type=int, default=10, help="cancel one prompt in N (0: none)")
    parser.add_argument("--warmup", type=int, default=30, help="prompts before the RSS baseline")
    parser.add_argument("--window", type=int, default=20, help="prompts in each median window")
    parser.add_argument("--report-every", type=int, default=20)
    parser.add_argument("--upscaler", type=Path, help=f"the upscaler to install as {UPSCALER} (default: a tiny one)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="glyphsr_soak_"))
    server = start_server(base, args.upscaler)
    try:
        print(f"soak: {args.prompts} prompts ({', '.join(WORKFLOWS)} alternating), 1 in {args.cancel_every} cancelled")
        result = soak(server, args.prompts, args.cancel_every, args.report_every)
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
    first, last, growth = result.growth(args.warmup, args.window)
    done = args.prompts - len(result.cancelled)
    print(f"{args.prompts} prompts in {result.seconds:.0f} s ({result.seconds / args.prompts:.2f} s each); "
          f"{len(result.cancelled)} cancelled, {done - len(result.missing)}/{done} others saved their image")
    print(f"RSS after warm-up ({args.warmup} prompts): median {first:.1f} MiB -> {last:.1f} MiB over the last "
          f"{args.window} ({growth:+.1%})")
    print(f"model loads: {dict(result.loads)}; files nobody reported in output/temp: {len(result.orphans)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
