"""Many images in one run, without models: inputs -> jobs, the manifest, the loop's skip / fail / interrupt rules."""

from __future__ import annotations

import json
from pathlib import Path, PurePath

import pytest
from PIL import Image

from glyphsr_core.batch.inputs import expand_inputs, find_partner, is_batch, make_jobs
from glyphsr_core.batch.manifest import ManifestWriter, merge_parts, part_path, read_manifest
from glyphsr_core.batch.outputs import save_image, save_json
from glyphsr_core.batch.runner import plan_jobs, run_jobs
from glyphsr_core.batch.shard import Shard, detect_shard
from glyphsr_core.errors import InvalidInputError


def _image(path: Path, shade: int = 128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (shade, shade, shade)).save(path)
    return path


@pytest.fixture
def tree(tmp_path):
    """a/x.png, a/sub/y.jpg, a/.hidden/z.png, a/notes.txt, b/x.png, b/x.webp"""
    root = tmp_path / "in"
    _image(root / "a" / "x.png")
    _image(root / "a" / "sub" / "y.jpg")
    _image(root / "a" / ".hidden" / "z.png")
    (root / "a" / "notes.txt").write_text("not an image")
    _image(root / "b" / "x.png")
    _image(root / "b" / "x.webp")
    return root


def _rels(jobs, out):
    return [job.output.relative_to(out).as_posix() for job in jobs]


def test_one_folder_is_searched_recursively_and_mirrored(tree, tmp_path):
    out = tmp_path / "out"
    jobs = plan_jobs([str(tree / "a")], out, lambda rel: out / rel.with_suffix(".png"))
    assert _rels(jobs, out) == ["sub/y.png", "x.png"]  # hidden folder and the text file left out
    assert [j.input for j in jobs] == [tree / "a" / "sub" / "y.jpg", tree / "a" / "x.png"]


def test_several_folders_go_under_their_own_names_and_clashes_are_numbered(tree, tmp_path):
    out = tmp_path / "out"
    jobs = plan_jobs([str(tree / "a"), str(tree / "b")], out, lambda rel: out / rel.with_suffix(".png"))
    assert _rels(jobs, out) == ["a/sub/y.png", "a/x.png", "b/x.png", "b/x_2.png"]
    assert jobs[3].input.name == "x.webp" and jobs[3].within == PurePath("x.webp")


def test_glob_patterns_expand_and_one_pattern_keeps_relative_paths(tree, tmp_path):
    out = tmp_path / "out"
    jobs = plan_jobs([str(tree / "a" / "**" / "*.jpg")], out, lambda rel: out / rel.with_suffix(".png"))
    assert _rels(jobs, out) == ["sub/y.png"]
    both = plan_jobs([str(tree / "*" / "x.png"), str(tree / "a" / "sub" / "y.jpg")], out,
                     lambda rel: out / rel.with_suffix(".png"))
    assert _rels(both, out) == ["x.png", "x_2.png", "y.png"]  # flattened: two inputs


def test_a_pattern_without_matches_and_a_missing_file_become_failing_jobs(tree, tmp_path):
    sources = expand_inputs([str(tree / "nothing*.png"), str(tree / "missing.png")])
    assert sources[0].error == f"no image matches the pattern {tree / 'nothing*.png'}"
    assert sources[1].error is None and sources[1].path == tree / "missing.png"  # the reader names it
    (tree / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="no images found"):
        plan_jobs([str(tree / "empty")], tmp_path / "out", lambda rel: tmp_path / rel)
    with pytest.raises(InvalidInputError, match="is a file"):
        plan_jobs([str(tree / "a")], tree / "a" / "x.png", lambda rel: tmp_path / rel)


def test_the_output_folder_inside_an_input_folder_is_not_read(tree):
    out = tree / "a" / "out"
    _image(out / "x.png")
    assert _rels(plan_jobs([str(tree / "a")], out, lambda rel: out / rel), out) == ["sub/y.jpg", "x.png"]
    assert all(not j.input.is_relative_to(out) for j in plan_jobs([str(tree / "a")], out, lambda rel: out / rel))


def test_which_inputs_make_a_run_over_many(tree, tmp_path):
    assert not is_batch([str(tree / "a" / "x.png")], tmp_path / "o.png")
    assert is_batch([str(tree / "a" / "x.png")], tree)  # -o an existing folder
    assert is_batch([str(tree / "a")], None) and is_batch([str(tree / "*.png")], None)
    assert is_batch([str(tree / "a" / "x.png"), str(tree / "b" / "x.png")], None)


def test_partners_pair_by_relative_name_with_any_image_extension(tree):
    assert find_partner(tree / "a", PurePath("sub/y.png")) == tree / "a" / "sub" / "y.jpg"
    assert find_partner(tree / "b", PurePath("x.png")) == tree / "b" / "x.png"
    assert find_partner(tree / "b", PurePath("sub/y.png")) is None


def test_shards_take_every_nth_job_and_need_the_launcher_variables(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert detect_shard() == Shard()
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "1")
    shard = detect_shard()
    assert shard.active and shard.take(list(range(8))) == [1, 4, 7]


def test_merged_parts_follow_the_job_order_and_cut_lines_are_dropped(tmp_path):
    manifest = tmp_path / "manifest.jsonl"
    for rank, names in ((0, ["a", "c"]), (1, ["b"])):
        with ManifestWriter(part_path(manifest, rank)) as writer:
            for name in names:
                writer.write({"input": name, "output": name, "status": "ok"})
    with part_path(manifest, 1).open("a") as cut:
        cut.write('{"input": "d", "outp')  # a hard kill in the middle of a line
    lines = merge_parts(manifest, 2, ["a", "b", "c"])
    assert [line["input"] for line in lines] == ["a", "b", "c"] == [line["input"] for line in read_manifest(manifest)]
    assert not part_path(manifest, 0).exists() and not part_path(manifest, 1).exists()


def _write_pair(job) -> int:
    save_image(Image.new("RGB", (4, 4), "white"), job.output)
    save_json({"ocr": {"regions": [{"text": "A"}, {"text": "B"}]}}, job.output.with_name(job.output.stem + "_r.json"))
    return 2


def _outputs(job):
    return [job.output, job.output.with_name(job.output.stem + "_r.json")]


def test_complete_outputs_are_skipped_failures_recorded_and_the_code_says_so(tree, tmp_path, capsys):
    out = tmp_path / "out"
    jobs = make_jobs(expand_inputs([str(tree / "a"), str(tree / "missing.png")]),
                     lambda rel: out / rel.with_suffix(".png"))

    def work(job):
        if not job.input.exists():
            raise InvalidInputError(f"image not found: {job.input}")
        return _write_pair(job)

    assert run_jobs(jobs, work, _outputs, out / "m.jsonl") == 1
    lines = read_manifest(out / "m.jsonl")
    assert [(l["status"], l["words"]) for l in lines] == [("ok", 2), ("ok", 2), ("failed", None)]
    assert lines[2]["error"] == f"image not found: {tree / 'missing.png'}"
    assert lines[2]["output"] == str(out / "missing.png")
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == "exit code 1: 1 image(s) failed (their errors are in the manifest)"
    first = (out / "a" / "x.png").stat().st_mtime_ns
    assert run_jobs(jobs[:2], work, _outputs, out / "m.jsonl") == 0
    assert [(l["status"], l["words"]) for l in read_manifest(out / "m.jsonl")] == [("skipped", 2), ("skipped", 2)]
    assert (out / "a" / "x.png").stat().st_mtime_ns == first
    assert run_jobs(jobs[:2], work, _outputs, out / "m.jsonl", overwrite=True) == 0
    assert [l["status"] for l in read_manifest(out / "m.jsonl")] == ["ok", "ok"]


def test_an_interrupt_mid_image_leaves_whole_files_and_valid_lines(tree, tmp_path):
    out = tmp_path / "out"
    jobs = make_jobs(expand_inputs([str(tree / "a")]), lambda rel: out / rel.with_suffix(".png"))

    def work(job):
        if job.name == "x.png":  # the second job: its image written, then Ctrl-C while the report is written
            save_image(Image.new("RGB", (4, 4)), job.output)
            job.output.with_name(".x_r.json.partial").write_text('{"ocr": ')
            raise KeyboardInterrupt
        return _write_pair(job)

    with pytest.raises(KeyboardInterrupt):
        run_jobs(jobs, work, _outputs, out / "m.jsonl")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["m.jsonl", "sub", "sub/y.png",
                                                                             "sub/y_r.json"]
    assert [json.loads(line)["status"] for line in (out / "m.jsonl").read_text().splitlines()] == ["ok"]


def test_progress_logs_each_image_with_an_eta_from_the_worked_ones(caplog):
    import io
    import logging

    from glyphsr_core.batch.progress import Progress

    progress = Progress(4, stream=io.StringIO(), bar=False)
    with caplog.at_level(logging.INFO, logger="glyphsr_core.batch"):
        progress.step("a.png", "skipped", 0.0)
        progress.step("b.png", "ok", 2.0)
        progress.step("c.png", "ok", 4.0)
    assert caplog.messages == ["[1/4] skipped a.png (0.0 s)", "[2/4] ok b.png (2.0 s), ETA 0:04",
                               "[3/4] ok c.png (4.0 s), ETA 0:03"]  # 1 left x 3 s per worked image


def test_the_progress_bar_shows_a_stage_inside_one_image():
    import io

    from glyphsr_core.batch.progress import Progress

    stream = io.StringIO()
    progress = Progress(2, stream=stream, bar=True)
    progress.inner(3, 16)  # e.g. tiles of a huge image, or diffusion steps
    progress.step("a.png", "ok", 1.0)
    progress.close()
    assert "3/16" in stream.getvalue() and "1/2" in stream.getvalue() and "ok a.png" in stream.getvalue()


def test_sigterm_mid_image_cleans_up_as_ctrl_c_does(tree, tmp_path):
    import os
    import signal

    out = tmp_path / "out"
    jobs = make_jobs(expand_inputs([str(tree / "a")]), lambda rel: out / rel.with_suffix(".png"))

    def work(job):
        save_image(Image.new("RGB", (4, 4)), job.output)
        os.kill(os.getpid(), signal.SIGTERM)  # a launcher stopping its processes
        return _write_pair(job)

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        run_jobs(jobs, work, _outputs, out / "m.jsonl")
    assert sorted(p.name for p in out.rglob("*")) == ["m.jsonl", "sub"] and signal.getsignal(signal.SIGTERM) == before
