"""Stand-in for ComfyUI's node_helpers (tests only): copy a CONDITIONING with extra values."""

from __future__ import annotations


def conditioning_set_values(conditioning, values={}, append=False):
    """New CONDITIONING list whose entries' option dicts are copies updated with `values`."""
    out = []
    for tensor, options in conditioning:
        options = dict(options)
        for key, value in values.items():
            if append and options.get(key) is not None:
                value = options[key] + value
            options[key] = value
        out.append([tensor, options])
    return out
