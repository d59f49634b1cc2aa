"""Folder runs of `python -m glyphsr_core upscale`: resume after a kill, models loaded once, images/s, processes.

    python benchmarks/upscale_folder.py [--n 200] [--kill-at 0.5] [--signal INT|KILL] [--processes 2]
        [--work /tmp/glyphsr-bench/upscale_folder] [--keep]

Makes N small synthetic signs (a few words each, seeded), then runs stage 1 (Text Restore, no
downloads) over the folder three ways and prints the figures:
  1. one process, uninterrupted: wall time, the run's images/s and how many models it loaded;
  2. one process stopped (SIGINT = Ctrl-C, or SIGKILL) when `--kill-at` of the images are recorded
     in the manifest, then the same command again: every output complete (image + report, no
     temporary file left) and byte-identical to run 1 (reports compared with their folder path
     replaced);
  3. `--processes` processes under `accelerate launch` (CPU: one torch thread each): wall time, the
     throughput ratio to run 1, and the same byte check.
Exit code 1 if a check fails.

Other upscalers over a folder (the job `upscale_dir.py` used to do): `python -m glyphsr_core upscale
LQ_DIR -o OUT_DIR --upscaler MODEL.safetensors --guard -1` (the raw model output, named like the
inputs; a stopped run resumes). `load_upscaler` below stays for benchmarks/keep_words.py.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

WORDS = "OPEN EXIT HOTEL CAFE TAXI BAR SALE MARKET STREET PARKING TICKETS BAKERY PHARMACY 24H NO ENTRY".split()


def load_upscaler(spec: str):
    """(callable [1,3,h,w] 0..1 -> [1,3,H,W] 0..1, name) for a spandrel file or 'textrestore'
    (the whole image, no tiles)."""
    if spec == "textrestore":
        from glyphsr_core.restore import BUNDLED_PATH, load_restorer, restore

        loaded = load_restorer(BUNDLED_PATH)
        return (lambda x: restore(loaded.model, loaded.scale, x, 4)), "textrestore"
    from spandrel import ModelLoader

    descriptor = ModelLoader().load_from_file(spec)
    descriptor.model.eval()
    return (lambda x: descriptor.model(x)), Path(spec).stem


def make_signs(folder: Path, n: int, seed: int = 0) -> None:
    """N signs of one or two short lines, ~100 x 40 px (as small LQ crops are), some in a subfolder."""
    rng = random.Random(seed)
    for i in range(n):
        lines = [" ".join(rng.sample(WORDS, rng.randint(1, 2))) for _ in range(rng.randint(1, 2))]
        paper = tuple(rng.randint(190, 250) for _ in range(3))
        ink = tuple(rng.randint(0, 70) for _ in range(3))
        font = ImageFont.load_default(size=28)
        width = int(max(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(t, font=font) for t in lines)) + 24
        image = Image.new("RGB", (width, 20 + 34 * len(lines)), paper)
        draw = ImageDraw.Draw(image)
        for row, text in enumerate(lines):
            draw.text((12, 10 + 34 * row), text, font=font, fill=ink)
        small = image.resize((max(16, width // 2), image.height // 2), Image.Resampling.BICUBIC)
        path = folder / ("more" if i % 3 == 2 else ".") / f"sign_{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        small.save(path)


def upscale_command(folder: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "glyphsr_core", "upscale", str(folder), "-o", str(out)]


def timed(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return time.perf_counter() - start, done.stdout


def outputs(folder: Path) -> dict[str, bytes]:
    """Every output but the manifest; reports with the folder's path replaced (they name their output)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != "manifest.jsonl":
            data = path.read_bytes()
            found[path.relative_to(folder).as_posix()] = data.replace(str(folder).encode(), b"OUT") \
                if path.suffix == ".json" else data
    return found


def check(name: str, folder: Path, reference: dict[str, bytes], n: int) -> bool:
    got = outputs(folder)
    partial = [k for k in got if k.endswith(".partial")]
    complete = sum(1 for k in got if k.endswith(".png") and k[:-4] + "_report.json" in got)
    same = got == reference
    print(f"{name}: {complete}/{n} outputs complete, {len(partial)} temporary files left, "
          f"{'byte-identical to the uninterrupted run' if same else 'DIFFERENT from the uninterrupted run'}")
    return same and complete == n and not partial


def interrupted_run(folder: Path, out: Path, n: int, at: float, sig: int) -> tuple[int, int]:
    """Start the run, send `sig` once `at` of the images are in the manifest; (lines then, exit code)."""
    worker = subprocess.Popen(upscale_command(folder, out), cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_on)
    manifest, target = out / "manifest.jsonl", max(1, int(n * at))
    while worker.poll() is None and not (manifest.is_file() and len(manifest.read_text().splitlines()) >= target):
        time.sleep(0.05)
    worker.send_signal(sig)
    worker.communicate()
    lines = manifest.read_text().splitlines() if manifest.is_file() else []
    for line in lines:
        json.loads(line)  # every line whole JSON, even after SIGKILL
    return len(lines), worker.returncode


def ctrl_c_on() -> None:
    """In the child: SIGINT acts (a shell running this script in the background ignores it, and
    children inherit that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="how many signs (default 200)")
    parser.add_argument("--kill-at", type=float, default=0.5, help="stop run 2 when this share is done")
    parser.add_argument("--signal", choices=("INT", "KILL"), default="INT")
    parser.add_argument("--processes", type=int, default=2, help="processes for run 3 (0: skip it)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/glyphsr-bench/upscale_folder"))
    parser.add_argument("--keep", action="store_true", help="keep the images and outputs")
    args = parser.parse_args(argv)
    shutil.rmtree(args.work, ignore_errors=True)
    make_signs(args.work / "in", args.n)
    print(f"{args.n} signs in {args.work / 'in'}")

    wall, stdout = timed(upscale_command(args.work / "in", args.work / "full"))
    loaded = re.search(r"models loaded: (\d+)", stdout).group(1)
    rate = re.search(r"([\d.]+) images/s", stdout).group(1)
    print(f"1. one process: {wall:.1f} s wall, {rate} images/s in the loop, {args.n / wall:.2f} images/s end to end; "
          f"models loaded: {loaded} (Text Restore and OCR, once for {args.n} images)")
    reference = outputs(args.work / "full")
    ok = True

    sig = signal.SIGINT if args.signal == "INT" else signal.SIGKILL
    lines, code = interrupted_run(args.work / "in", args.work / "resumed", args.n, args.kill_at, sig)
    resume_wall, stdout = timed(upscale_command(args.work / "in", args.work / "resumed"))
    skipped = re.search(r"(\d+) skipped", stdout).group(1)
    print(f"2. SIG{args.signal} after {lines} manifest lines (exit {code}); resumed in {resume_wall:.1f} s, "
          f"{skipped} skipped")
    ok &= check("   resumed", args.work / "resumed", reference, args.n)

    if args.processes > 1:
        launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
                  str(args.processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                  "--main_process_port", str(free_port()), "-m", "glyphsr_core", "upscale", str(args.work / "in"),
                  "-o", str(args.work / "multi")]
        multi_wall, _ = timed(launch)
        print(f"3. {args.processes} processes: {multi_wall:.1f} s wall, {args.n / multi_wall:.2f} images/s end to end, "
              f"throughput ratio {wall / multi_wall:.2f} x one process")
        ok &= check("   processes", args.work / "multi", reference, args.n)
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)
    print("all checks passed" if ok else "A CHECK FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
