"""The run's record: one JSON line per input (input, output, status ok/skipped/failed, seconds, words, error).

Each line is written with a single `os.write` on a file opened for appending, so an interrupt leaves
only whole lines. Under a multi-process launcher every process writes its own part
(`manifest.jsonl.part<RANK>`) and the first merges them in job order.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

STATUSES = ("ok", "skipped", "failed")


def entry(input: Path, output: Path, status: str, seconds: float, words: int | None = None,
          error: str | None = None) -> dict[str, Any]:
    """One manifest line as a dict (the fields every line has, in this order)."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    return {"input": str(input), "output": str(output), "status": status, "seconds": round(seconds, 3),
            "words": words, "error": error}


class ManifestWriter:
    """Appends lines to a fresh file (an earlier run's manifest at the same path is replaced)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)

    def write(self, line: dict[str, Any]) -> None:
        os.write(self._fd, (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8"))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "ManifestWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def read_manifest(path: Path) -> list[dict[str, Any]]:
    """Every whole line of a manifest (a line cut short by a hard kill is left out)."""
    lines = []
    for text in path.read_text(encoding="utf-8").splitlines():
        try:
            lines.append(json.loads(text))
        except json.JSONDecodeError:
            continue
    return lines


def part_path(path: Path, rank: int) -> Path:
    """One process's own manifest beside the merged one (no two processes append to one file)."""
    return path.with_name(f"{path.name}.part{rank}")


def merge_parts(path: Path, world_size: int, order: Iterable[str]) -> list[dict[str, Any]]:
    """Join the processes' parts into `path`, in job order (by output path), and delete the parts."""
    lines = [line for rank in range(world_size) if part_path(path, rank).is_file()
             for line in read_manifest(part_path(path, rank))]
    position = {name: i for i, name in enumerate(order)}
    lines.sort(key=lambda line: position.get(line["output"], len(position)))
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    partial.replace(path)
    for rank in range(world_size):
        part_path(path, rank).unlink(missing_ok=True)
    return lines
