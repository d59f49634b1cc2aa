"""Peak memory and progress of `upscale` (no models: Text Restore x4, OCR, PNG) on large photo-like inputs.

Makes a synthetic photo-like image with text (sky gradient, grain, shapes, signs of several sizes) of
each chosen size in megapixels, runs the real CLI in a child process, samples its RSS and prints, per
size: peak RSS (the kernel's figure for the child, from wait4), seconds until the first tile-progress
line, and total seconds. Target: 24 MP x4 on 2 CPU cores with peak RSS <= 4 GB, progress within 5 s.

Run: python benchmarks/huge_image_memory.py [--mp 1 6 24] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
WORDS = ("OPEN", "Bakery", "EXIT", "Station Road", "SALE 50%", "Coffee", "Platform 4", "NO PARKING", "Hotel")


def photo_like(megapixels: float, seed: int = 0) -> Image.Image:
    """A 3:2 image: vertical sky gradient, grain, a few darker blocks (buildings) and signs with words."""
    width = int(round((megapixels * 1e6 * 1.5) ** 0.5))
    height = int(round(width / 1.5))
    rng = np.random.default_rng(seed)
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    sky = np.array([110, 160, 220], np.float32) * (1 - rows) + np.array([230, 225, 210], np.float32) * rows
    image = Image.fromarray(np.broadcast_to(sky, (height, width, 3)).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(height // 3, height))
        shade = tuple(int(v) for v in rng.integers(40, 140, 3))
        draw.rectangle((x0, y0, x0 + width // 6, height), fill=shade)
    step = max(1, height // 10)
    for index, y in enumerate(range(step // 2, height - step, step)):
        size = max(10, int(step * (0.25 + 0.35 * (index % 3) / 2)))
        font = _font(size)
        x = int(rng.integers(0, max(1, width // 3)))
        text = " ".join(WORDS[(index + k) % len(WORDS)] for k in range(3))
        box = draw.textbbox((x, y), text, font=font)
        draw.rectangle((box[0] - size // 4, box[1] - size // 4, box[2] + size // 4, box[3] + size // 4), fill=(250, 248, 240))
        draw.text((x, y), text, font=font, fill=(20, 20, 30))
    grain = rng.normal(0, 3, (height, width, 1)).astype(np.float32)
    return Image.fromarray(np.clip(np.asarray(image, np.float32) + grain, 0, 255).astype(np.uint8))


def _font(size: int) -> ImageFont.ImageFont:
    for name in ("DejaVuSans-Bold.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size)


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_one(source: Path, out: Path, echo: bool = False) -> dict:
    """The CLI in a child process: peak RSS, first progress line, total seconds, and its last lines."""
    command = [sys.executable, "-m", "glyphsr_core", "upscale", str(source), "-o", str(out)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    start = time.monotonic()
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[tuple[float, str]] = []

    def reader() -> None:
        for line in child.stdout:  # type: ignore[union-attr]
            lines.append((time.monotonic() - start, line.rstrip()))
            if echo:
                print(f"    [{lines[-1][0]:7.1f} s, RSS {_rss(child.pid) / 2**30:.2f} GiB] {line.rstrip()}", flush=True)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    sampled = 0
    while child.poll() is None:
        sampled = max(sampled, _rss(child.pid))
        time.sleep(0.2)
    thread.join()
    total = time.monotonic() - start
    first = next((t for t, line in lines if "Text Restore: tile " in line), None)
    return {"rc": child.returncode, "total_s": total, "first_progress_s": first, "sampled_peak": sampled,
            "tail": [line for _, line in lines[-6:]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mp", type=float, nargs="+", default=[1, 6], help="input sizes in megapixels (e.g. 1 6 24)")
    parser.add_argument("--keep", type=Path, default=None, help="keep inputs and outputs in this folder")
    parser.add_argument("--echo", action="store_true", help="print the CLI's lines as they come, with time and RSS")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="glyphsr-huge-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; files in {folder}")
    for mp in args.mp:
        source = folder / f"photo_{mp:g}mp.png"
        if not source.is_file():
            photo_like(mp).save(source)
        result = _measured(source, folder / f"photo_{mp:g}mp_x4.png", args.echo)
        size = Image.open(source).size
        first = result["first_progress_s"]
        print(f"{mp:g} MP ({size[0]}x{size[1]}) x4: rc {result['rc']}, peak RSS {result['peak'] / 2**30:.2f} GiB, "
              f"first progress {'-' if first is None else f'{first:.1f} s'}, total {result['total_s']:.0f} s, "
              f"load {os.getloadavg()[0]:.1f}", flush=True)
        for line in result["tail"]:
            print(f"    {line}")


def _measured(source: Path, out: Path, echo: bool) -> dict:
    """`run_one` with the kernel's peak RSS of the child (ru_maxrss of this process's children)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    result = run_one(source, out, echo)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    # ru_maxrss of children is the largest child so far: it is this child's when it grew, else the sampled peak
    result["peak"] = after if after > before else result["sampled_peak"]
    return result


if __name__ == "__main__":
    main()
