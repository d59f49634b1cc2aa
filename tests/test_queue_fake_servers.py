"""`queue` against fake ComfyUI servers (tests/comfy_fake.py): where inputs go, what happens when a
server fails or vanishes, resuming from the manifest, output names, exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from comfy_fake import FakeComfy
from glyphsr_core.cli import main
from glyphsr_core.remote import ComfyClient, ServerPool

REPO = Path(__file__).resolve().parent.parent
RESTORE_API = REPO / "workflows" / "api" / "glyphsr_restore_x4.api.json"


@pytest.fixture
def servers(tmp_path):
    made: list[FakeComfy] = []

    def make(name: str, **switches) -> FakeComfy:
        made.append(FakeComfy(tmp_path / name, name, **switches))
        return made[-1]

    yield make
    for fake in made:
        if fake.alive:
            fake.stop()


@pytest.fixture
def inputs(tmp_path) -> list[Path]:
    folder = tmp_path / "in"
    folder.mkdir()
    paths = []
    for i, color in enumerate([(200, 0, 0), (0, 200, 0), (0, 0, 200), (90, 90, 90)]):
        paths.append(folder / f"img{i}.png")
        Image.new("RGB", (8 + i, 6), color).save(paths[-1])
    return paths


def queue(out: Path, fakes: list[FakeComfy], items: list, *extra: str, workflow: Path = RESTORE_API) -> int:
    argv = ["queue", *map(str, items), "--workflow", str(workflow), "-o", str(out)]
    for fake in fakes:
        argv += ["--server", fake.url]
    return main(argv + list(extra))


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "queue_manifest.jsonl").read_text().splitlines()]


def test_outputs_are_downloaded_under_the_input_names(servers, inputs, tmp_path):
    fake = servers("a")
    out = tmp_path / "out"
    assert queue(out, [fake], inputs[:2]) == 0
    # the restore workflow saves with node 3 (SaveImage); its PreviewImage nodes (temp) are not downloaded
    assert sorted(p.name for p in out.iterdir()) == ["img0_3_0.png", "img1_3_0.png", "queue_manifest.jsonl"]
    for src in inputs[:2]:
        with Image.open(out / f"{src.stem}_3_0.png") as got, Image.open(src) as lq:
            assert got.size == (lq.width * 2, lq.height * 2)  # what the fake server made of this input
            assert got.getpixel((0, 0)) == lq.getpixel((0, 0))
    records = {Path(r["input"]).name: r for r in manifest(out)}
    assert records["img0.png"]["status"] == "done" and records["img0.png"]["server"] == fake.url
    assert records["img0.png"]["outputs"] == ["img0_3_0.png"] and records["img0.png"]["error"] is None


def test_a_folder_mirrors_its_subfolders_and_every_saved_image_gets_node_and_index(servers, inputs, tmp_path):
    fake = servers("a", images_per_save=2)
    (inputs[0].parent / "sub").mkdir()
    shutil.move(inputs[1], inputs[0].parent / "sub" / "img1.png")
    workflow = json.loads(RESTORE_API.read_text())
    workflow["10"] = {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "second"}}
    (tmp_path / "two_saves.api.json").write_text(json.dumps(workflow))
    out = tmp_path / "out"
    assert queue(out, [fake], [inputs[0].parent], workflow=tmp_path / "two_saves.api.json") == 0
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    expected = [f"{stem}_{node}_{i}.png" for stem in ("img0", "img2", "img3", "sub/img1")
                for node in ("3", "10") for i in (0, 1)]
    assert names == sorted(expected)
    assert not [p for p in out.rglob("*") if p.name.endswith(".part")]


def test_inputs_go_to_the_least_busy_server(servers, inputs, tmp_path):
    busy, idle = servers("busy", foreign_load=5), servers("idle")
    assert queue(tmp_path / "out", [busy, idle], inputs, "--per-server", "1") == 0
    assert busy.ran == [] and len(idle.ran) == 4
    assert {r["server"] for r in manifest(tmp_path / "out")} == {idle.url}


def test_equally_idle_servers_share_the_inputs(servers, tmp_path):
    a, b = servers("a"), servers("b")
    pool = ServerPool([ComfyClient(a.url), ComfyClient(b.url)])
    picked = []
    for _ in range(4):
        client = pool.choose(set())
        picked.append(client.url)
        pool.release(client.url)
    assert sorted(picked) == sorted([a.url, b.url] * 2)
    a.foreign_load = 3
    assert pool.choose(set()).url == b.url
    assert pool.choose({b.url}).url == a.url  # an input that failed on b goes to a, busy or not


def test_an_input_that_fails_on_one_server_is_run_on_another(servers, inputs, tmp_path):
    broken, good = servers("broken", fail=True), servers("good")
    out = tmp_path / "out"
    assert queue(out, [broken, good], inputs) == 0
    records = manifest(out)
    assert all(r["status"] == "done" and r["server"] == good.url for r in records)
    retried = [r for r in records if r["attempts"]]
    assert retried and len(broken.ran) == len(retried)
    assert retried[0]["attempts"][0]["server"] == broken.url
    assert "node 2 (GlyphSR_TextRestore) failed: RuntimeError: broken is broken" in retried[0]["attempts"][0]["error"]


def test_a_prompt_a_server_refuses_is_run_on_another(servers, inputs, tmp_path):
    refusing, good = servers("refusing", reject=True), servers("good")
    out = tmp_path / "out"
    assert queue(out, [refusing, good], inputs[:2], "--per-server", "1") == 0
    tries = [t for r in manifest(out) for t in r["attempts"]]
    assert tries and tries[0] == {"server": refusing.url, "error": "Prompt outputs failed validation | node 2 "
                                  "(GlyphSR_TextRestore): Value not in list model: 'x.pth' not in []"}
    assert refusing.ran == [] and len(good.ran) == 2


def test_failed_everywhere_exits_1_and_says_why(servers, inputs, tmp_path, capsys):
    a, b = servers("a", fail=True), servers("b", fail=True)
    out = tmp_path / "out"
    assert queue(out, [a, b], inputs[:1]) == 1
    (record,) = manifest(out)
    assert record["status"] == "failed" and record["outputs"] == []
    assert {t["server"] for t in record["attempts"]} == {a.url, b.url}
    assert "failed: RuntimeError" in record["error"] and "failed on every server" in record["error"]
    assert "FAILED" in capsys.readouterr().out


def test_a_server_that_vanishes_mid_run_leaves_its_inputs_to_the_other(servers, inputs, tmp_path):
    dying, good = servers("dying", die_on_prompt=1, delay=0.05), servers("good", delay=0.05)
    out = tmp_path / "out"
    assert queue(out, [dying, good], inputs) == 0
    records = manifest(out)
    assert len(records) == 4 and all(r["status"] == "done" and r["server"] == good.url for r in records)
    lost = [t for r in records for t in r["attempts"]]
    assert lost and all(t["server"] == dying.url for t in lost)
    assert not dying.alive and len(good.ran) == 4


def test_no_server_answering_fails_every_input(inputs, tmp_path):
    dead = FakeComfy(tmp_path / "dead")
    dead.stop()
    out = tmp_path / "out"
    assert main(["queue", str(inputs[0]), "--workflow", str(RESTORE_API), "-o", str(out), "--server", dead.url]) == 1
    assert manifest(out)[0]["error"].startswith("no server answering")


def test_a_rerun_skips_completed_inputs(servers, inputs, tmp_path):
    fake = servers("a")
    out = tmp_path / "out"
    assert queue(out, [fake], inputs[:2]) == 0
    assert queue(out, [fake], inputs[:3]) == 0
    assert len(fake.ran) == 3  # only img2 ran the second time
    (out / "img0_3_0.png").unlink()  # an output gone: that input runs again
    assert queue(out, [fake], inputs[:3]) == 0
    assert len(fake.ran) == 4 and fake.ran[-1].endswith("_img0.png")
    assert queue(out, [fake], inputs[:3], "--set", "3.filename_prefix=other") == 0  # another workflow: all again
    assert len(fake.ran) == 7


def test_a_ui_format_workflow_is_refused_with_how_to_export(inputs, tmp_path, capsys):
    ui = REPO / "workflows" / "glyphsr_restore_x4.json"
    assert main(["queue", str(inputs[0]), "--workflow", str(ui), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "UI format" in err and "Save (API)" in err and str(RESTORE_API) in err
    assert not (tmp_path / "out").exists()


def test_an_unwritable_output_fails_that_input_and_the_run(servers, inputs, tmp_path):
    fake = servers("a")
    out = tmp_path / "out"
    (out / "img0_3_0.png").mkdir(parents=True)  # a folder where the image should go
    assert queue(out, [fake], inputs[:2]) == 1
    records = {Path(r["input"]).name: r for r in manifest(out)}
    assert records["img1.png"]["status"] == "done"
    assert records["img0.png"]["status"] == "failed" and "img0_3_0.png" in records["img0.png"]["error"]
    assert len(fake.ran) == 2  # ran once: another server would not help


def test_a_prompt_that_runs_too_long_goes_to_another_server(servers, inputs, tmp_path):
    slow, quick = servers("slow", delay=3.0), servers("quick")
    out = tmp_path / "out"
    assert queue(out, [slow, quick], inputs[:1], "--timeout", "0.5") == 0
    (record,) = manifest(out)
    assert record["server"] == quick.url
    assert record["attempts"][0]["server"] == slow.url and "did not finish within 0.5 s" in record["attempts"][0]["error"]


def test_a_manifest_that_cannot_be_written_stops_the_run(servers, inputs, tmp_path):
    fake = servers("a")
    out = tmp_path / "out"
    (out / "queue_manifest.jsonl").mkdir(parents=True)  # the manifest's name taken by a folder
    with pytest.raises(IsADirectoryError):
        queue(out, [fake], inputs, "--per-server", "1")
    assert len(fake.ran) < len(inputs)  # no more inputs taken once it could not record
