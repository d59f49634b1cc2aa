"""diffusers-side building blocks shared by the headless method and the trainer.

`sampler`: the diffusers sampler (`GlyphSRPipeline`: TS-ControlNet + ping-pong, tiled when asked)
and its prompt pair `Conditioning`; `models`: load a base model (diffusers folder or single file +
local config) and ControlNets from files; `tiny`: random-initialised tiny models for CI;
`residuals`: ControlNet residual tuples <-> the fusion dicts of `glyphsr_core.sampling.fusion`;
`original_layout`: a diffusers ControlNet written back in its original (ldm) key layout.
Everything here imports diffusers lazily.
"""

#: inference schedulers offered by the pipeline and the `upscale` command (names as ComfyUI spells them)
SCHEDULERS = ("euler", "euler_a", "ddim", "dpmpp_2m", "unipc", "ddpm")
