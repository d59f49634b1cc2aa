"""Synthetic corpus speed: seconds for N samples (HQ + LQ x4 + LQ x8 + mask + glyph map) and the load it ran under.

Target: 1,000 samples at 512 px in <= 5 minutes on 2 CPU cores (realistic degradation, 2 workers).
Run: python benchmarks/corpus_speed.py [--n 1000] [--workers 2] [--mode realistic] [--system-fonts]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from glyphsr_core.data.corpus import CorpusConfig, make_corpus  # noqa: E402
from glyphsr_core.data.corpus_fonts import discover_fonts  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mode", default="realistic", choices=("realistic", "bicubic", "paper"))
    parser.add_argument("--system-fonts", action="store_true", help="also use the machine's fonts")
    args = parser.parse_args()
    fonts, _ = discover_fonts(system=args.system_fonts)
    load_before = os.getloadavg()[0]
    cpu_before = os.times()
    with tempfile.TemporaryDirectory() as out:
        config = CorpusConfig(out=Path(out), size=args.size, scales=(4, 8), seed=0, mode=args.mode, fonts=tuple(fonts))
        report = make_corpus(config, args.n, workers=args.workers)
        size_mb = sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file()) / 2**20
    cpu_after = os.times()
    cpu = (cpu_after.children_user + cpu_after.children_system + cpu_after.user + cpu_after.system
           - cpu_before.children_user - cpu_before.children_system - cpu_before.user - cpu_before.system)
    per_1000 = report.seconds / args.n * 1000
    print(f"{args.n} samples at {args.size} px ({args.mode}, scales 4,8, {len(fonts)} fonts, {args.workers} workers): "
          f"{report.seconds:.1f} s wall, {report.samples / report.seconds:.2f} samples/s, {size_mb:.0f} MiB written")
    print(f"projected for 1,000 samples: {per_1000:.0f} s wall ({'meets' if per_1000 <= 300 else 'misses'} the 300 s target); "
          f"CPU time {cpu:.0f} s = {cpu / args.n * 1000 / 2:.0f} s per 1,000 on 2 idle cores")
    print(f"load average at start {load_before:.1f}, at end {os.getloadavg()[0]:.1f} (other processes share the CPU)")


if __name__ == "__main__":
    main()
