"""Many images in one run: inputs -> jobs, a resumable loop with a manifest, progress, many processes.

`inputs` turns files, folders and globs into (input, output) jobs that mirror the input names;
`runner` works through them with the models loaded once, skips complete outputs, records each
image's outcome in a JSONL `manifest`, shows `progress`, and under a multi-process launcher
(`shard`) takes every N-th job. The commands (`upscale`, `analyze`, `keep-words`) supply the work
for one image.
"""
