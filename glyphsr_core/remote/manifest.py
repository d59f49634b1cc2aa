"""`<OUT>/queue_manifest.jsonl`: one line per finished input, so that a rerun skips what is done.

Lines are appended (flushed and synced) as inputs finish; the last line of an input wins. An input
counts as done for a rerun only with the same workflow key and with all of its outputs on disk. A
half-written last line (the process was killed) is ignored.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from ..batch.manifest import read_manifest

MANIFEST_NAME = "queue_manifest.jsonl"


class Manifest:
    """Append-only record of the inputs of one output folder."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / MANIFEST_NAME
        self._lock = threading.Lock()

    def records(self) -> dict[str, dict]:
        """input path -> its last record (a line cut short by a kill is left out)."""
        if not self.path.is_file():
            return {}
        return {r["input"]: r for r in read_manifest(self.path) if isinstance(r, dict) and "input" in r}

    def completed(self, workflow_key: str) -> set[str]:
        """Inputs already done with this workflow whose outputs all exist."""
        return {name for name, r in self.records().items()
                if r.get("status") == "done" and r.get("workflow") == workflow_key
                and all((self.out_dir / out).is_file() for out in r.get("outputs", []))}

    def append(self, record: dict) -> None:
        record = {**record, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
