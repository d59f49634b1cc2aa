"""Training of the TS-ControlNet text branch (diffusers + accelerate).

`config`: the YAML/TOML config and its checks; `data`: corpus samples -> training tensors and the
resumable step-indexed sampler; `trainer`: models, loss, the accelerate loop, checkpoints, bundles;
`validate`: OCR F1 of the pipeline on held-out corpus samples; `command`: the `train` CLI command.
"""
