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

MANIFEST_NAME = "queue_manifest.jsonl"


class Manifest:
    """Append-only record of the inputs of one output folder."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / MANIFEST_NAME
        self._lock = threading.Lock()

    def records(self) -> dict[str, dict]:
        """input path -> its last record."""
        last: dict[str, dict] = {}
        if not self.path.is_file():
            return last
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut short by a kill
            if isinstance(record, dict) and "input" in record:
                last[record["input"]] = record
        return last

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
