"""Reading order for detected words."""

from __future__ import annotations

from typing import Sequence

from .engine import DetectedWord


def reading_order(words: Sequence[DetectedWord]) -> list[DetectedWord]:
    """Top-to-bottom rows, left-to-right inside a row.

    Lines whose vertical centres fall within half a line height of each other form one row, so
    two signs side by side are read left then right rather than interleaved by a pixel of skew.
    """
    lines: dict[int, list[DetectedWord]] = {}
    for word in words:
        lines.setdefault(word.line, []).append(word)
    if not lines:
        return []

    def extent(ws: list[DetectedWord]) -> tuple[float, float, float]:
        ys = [y for w in ws for _, y in w.quad]
        xs = [x for w in ws for x, _ in w.quad]
        return (min(ys) + max(ys)) / 2.0, max(ys) - min(ys), min(xs)

    info = {key: extent(ws) for key, ws in lines.items()}
    rows: list[list[int]] = []
    for key in sorted(lines, key=lambda k: info[k][0]):
        center, height, _ = info[key]
        if rows:
            last = rows[-1]
            row_center = sum(info[k][0] for k in last) / len(last)
            row_height = max(info[k][1] for k in last)
            if abs(center - row_center) <= 0.5 * max(height, row_height):
                last.append(key)
                continue
        rows.append([key])
    ordered: list[DetectedWord] = []
    for row in rows:
        for key in sorted(row, key=lambda k: info[k][2]):
            ordered.extend(sorted(lines[key], key=lambda w: min(x for x, _ in w.quad)))
    return ordered
