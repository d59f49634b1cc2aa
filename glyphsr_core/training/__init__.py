"""Training of the two trained parts of the method.

The TS-ControlNet text branch (diffusers + accelerate; the `train` command): `text_branch_config`
(the YAML/TOML config and its checks), `text_branch_data` (corpus samples -> training tensors and
the resumable step-indexed sampler), `text_branch` (models, loss, the accelerate loop, checkpoints,
bundles), `text_branch_validate` (OCR F1 of the sampler on held-out corpus samples).

The Text Restore network (the `train-restorer` command): `restorer_config`, `restorer_data`,
`restorer` (losses, the loop, EMA, validation, the shipped file) and `text_prior` (the PP-OCR
recogniser as a differentiable word loss; needs onnx2torch).
"""
