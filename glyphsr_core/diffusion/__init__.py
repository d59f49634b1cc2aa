"""diffusers-side building blocks shared by the headless pipeline and the trainer.

`models`: load a base model (diffusers folder or single file + local config) and ControlNets from
files; `tiny`: random-initialised tiny models for CI; `residuals`: ControlNet residual tuples <->
the fusion dicts of `glyphsr_core.fusion`. Everything here imports diffusers lazily.
"""

#: inference schedulers offered by the pipeline and the `upscale` command (names as ComfyUI spells them)
SCHEDULERS = ("euler", "euler_a", "ddim", "dpmpp_2m", "unipc", "ddpm")
