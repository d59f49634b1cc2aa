"""How the method samples: the ping-pong prompt schedule (`pingpong`), the TS-ControlNet residual
fusion with a scalar or mask beta (`fusion`) and the colour fix toward the LQ colours (`colorfix`).

Plain torch; both the ComfyUI nodes and the headless diffusers sampler build on these.
"""
