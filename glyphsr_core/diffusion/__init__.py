"""diffusers-side building blocks shared by the headless pipeline and the trainer.

`models`: load a base model (diffusers folder or single file + local config) and ControlNets from
files; `tiny`: random-initialised tiny models for CI; `residuals`: ControlNet residual tuples <->
the fusion dicts of `glyphsr_core.fusion`. Everything here imports diffusers lazily.
"""
