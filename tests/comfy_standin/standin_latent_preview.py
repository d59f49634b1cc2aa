"""Stand-in for ComfyUI's latent_preview (tests only): the sampler callback drives a ProgressBar."""

from __future__ import annotations

import comfy.utils

#: every (model, steps) prepare_callback was asked for, for assertions
prepared: list[tuple[object, int]] = []


def prepare_callback(model, steps, x0_output_dict=None):
    prepared.append((model, steps))
    pbar = comfy.utils.ProgressBar(steps)

    def callback(step, x0, x, total_steps):
        if x0_output_dict is not None:
            x0_output_dict["x0"] = x0
        pbar.update_absolute(step + 1, total_steps, None)

    return callback
