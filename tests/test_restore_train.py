"""train-restorer: the text prior reads letters, a run resumes exactly, the config is checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from glyphsr_core.training.text_prior import TextPriorUnavailableError, import_onnx2torch
from glyphsr_core.training.restorer_config import load_restorer_config

try:
    import_onnx2torch()
except TextPriorUnavailableError as exc:  # CI installs it (requirements-nodeps.txt)
    pytest.skip(f"the text prior needs onnx + onnx2torch: {exc}", allow_module_level=True)


@pytest.fixture(scope="module")
def recogniser():
    from glyphsr_core.training.text_prior import load_recogniser

    return load_recogniser()


def _word_crop(text: str, height: int = 40) -> torch.Tensor:
    font = ImageFont.load_default(size=height - 10)
    width = int(font.getlength(text)) + 12
    image = Image.new("RGB", (width, height), "white")
    ImageDraw.Draw(image).text((6, 4), text, fill="black", font=font)
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)


def test_recogniser_matches_onnxruntime(recogniser):
    import onnxruntime as ort

    from glyphsr_core.training.text_prior import recogniser_batch, recogniser_path

    batch = recogniser_batch([_word_crop("OPEN")])
    session = ort.InferenceSession(str(recogniser_path()), providers=["CPUExecutionProvider"])
    expected = session.run(None, {session.get_inputs()[0].name: batch.numpy()})[0]
    with torch.no_grad():
        assert np.abs(recogniser.module(batch).numpy() - expected).max() < 1e-4


def test_ctc_loss_is_low_for_the_right_word_and_reaches_the_pixels(recogniser):
    from glyphsr_core.training.text_prior import ctc_word_loss

    crop = _word_crop("SALE").requires_grad_(True)
    right = ctc_word_loss(recogniser, [crop], [recogniser.encode("SALE")])
    wrong = ctc_word_loss(recogniser, [crop], [recogniser.encode("KX42")])
    blank = ctc_word_loss(recogniser, [torch.ones_like(crop)], [recogniser.encode("SALE")])
    assert right.item() < 0.5 < wrong.item() and blank.item() > 1.0
    right.backward()
    assert crop.grad is not None and crop.grad.abs().sum() > 0


def test_encode_refuses_characters_outside_the_alphabet(recogniser):
    assert recogniser.encode("") is None
    assert recogniser.encode("\u0378") is None  # unassigned code point
    ids = recogniser.encode("Ab1")
    assert [recogniser.alphabet[i] for i in ids] == ["A", "b", "1"] and 0 not in ids


def _tiny_config(tmp_path: Path, output: str, iterations: int, extra: str = "") -> Path:
    path = tmp_path / f"{output}.yaml"
    path.write_text(f"""
output: {tmp_path / output}
size: 128
corpora:
  - {{out: {tmp_path / 'corpus_a'}, n: 3, seed: 1, degradation: bicubic}}
  - {{out: {tmp_path / 'corpus_b'}, n: 2, seed: 2, degradation: realistic, weight: 0.5}}
validation: {{out: {tmp_path / 'corpus_val'}, n: 1, seed: 3, degradation: bicubic}}
num_feat: 48
num_conv: 2
iterations: {iterations}
patches: 2
patch_size: 16
words: 2
checkpoint_every: 2
validate_every: 100
validate_images: 1
{extra}
""", encoding="utf-8")
    return path


@pytest.mark.slow
def test_a_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(tmp_path):
    from glyphsr_core.restore import load_restorer
    from glyphsr_core.training.restorer import FINAL, train_restorer

    straight = train_restorer(load_restorer_config(_tiny_config(tmp_path, "straight", 4)))
    first = train_restorer(load_restorer_config(_tiny_config(tmp_path, "resumed", 2)))
    assert first.step == 2 and (tmp_path / "resumed" / "state.pt").is_file()
    resumed = train_restorer(load_restorer_config(_tiny_config(tmp_path, "resumed", 4)), resume=True)
    assert straight.step == resumed.step == 4
    a = load_restorer(tmp_path / "straight" / FINAL).model.state_dict()
    b = load_restorer(tmp_path / "resumed" / FINAL).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    start = load_restorer(tmp_path / "resumed" / FINAL)
    assert start.metadata["step"] == 4 and [v["step"] for v in start.metadata["validation"]] == [2, 4]
    assert {"f1_x4", "f1_x8"} <= set(start.metadata["validation"][-1])


@pytest.mark.slow
def test_a_run_with_ema_and_cosine_rate_resumes_exactly_when_stopped_by_the_clock(tmp_path):
    """`--max-minutes` stops mid-run (here after every step); the EMA weights and the rate curve carry over."""
    from glyphsr_core.restore import load_restorer
    from glyphsr_core.training.restorer import FINAL, train_restorer

    extra = "lr_schedule: cosine\nema: 0.5\nword_every: 2"
    straight = train_restorer(load_restorer_config(_tiny_config(tmp_path, "straight", 4, extra)))
    config = load_restorer_config(_tiny_config(tmp_path, "stopped", 4, extra))
    steps = [train_restorer(config, resume=True, max_minutes=0).step for _ in range(3)]
    last = train_restorer(config, resume=True)
    assert steps == [1, 2, 3] and straight.step == last.step == 4
    a = load_restorer(tmp_path / "straight" / FINAL).model.state_dict()
    b = load_restorer(tmp_path / "stopped" / FINAL).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    state = torch.load(tmp_path / "stopped" / "state.pt", weights_only=True)
    assert not all(torch.equal(state["ema"][k], state["model"][k]) for k in state["model"])


def test_cosine_rate_falls_from_lr_to_a_tenth_and_ema_moves_toward_the_weights(tmp_path):
    from glyphsr_core.restore.compact import CompactSR
    from glyphsr_core.training.restorer import learning_rate, update_ema

    config = load_restorer_config(_tiny_config(tmp_path, "rate", 11, "lr_schedule: cosine\nlr: 1.0e-3"))
    rates = [learning_rate(config, step) for step in range(11)]
    assert rates[0] == pytest.approx(1e-3) and rates[-1] == pytest.approx(1e-4) and rates[5] == pytest.approx(5.5e-4)
    assert all(a > b for a, b in zip(rates, rates[1:]))
    constant = load_restorer_config(_tiny_config(tmp_path, "flat", 11))
    assert {learning_rate(constant, step) for step in range(11)} == {constant.lr}
    model, ema = CompactSR(4, 1, 4), CompactSR(4, 1, 4)
    for p in model.parameters():
        torch.nn.init.constant_(p, 1.0)
    for p in ema.parameters():
        torch.nn.init.constant_(p, 0.0)
    update_ema(ema, model, 0.9)
    assert all(torch.allclose(p, torch.full_like(p, 0.1)) for p in ema.parameters())


@pytest.mark.parametrize("change, message", [
    ("iterations: 0", "iterations must be at least 1"),
    ("nonsense: 3", "unknown key"),
    ("x8_fraction: 2", "x8_fraction in 0..1"),
    ("ema: 1.0", "ema must be in"),
    ("lr_schedule: step", "lr_schedule must be"),
    ("word_every: 0", "word_every must be at least 1"),
    ("device: gpu", "device must be 'cpu', 'cuda' or 'auto'"),
    ("last_step: 9", "last_step must be between 1 and iterations"),
    ("grid_weight: -1", "grid_weight, context and head_refit must be >= 0"),
])
def test_config_errors_name_the_key(tmp_path, change, message):
    path = _tiny_config(tmp_path, "bad", 4)
    text = path.read_text().replace("iterations: 4", change if change.startswith("iterations") else f"iterations: 4\n{change}")
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_restorer_config(path)


def test_training_device_auto_follows_torch_and_cuda_without_one_is_a_clear_error(monkeypatch):
    from glyphsr_core.training.restorer import training_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert training_device("auto") == torch.device("cpu") and training_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="torch sees no CUDA device"):
        training_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert training_device("auto") == torch.device("cuda")


@pytest.mark.parametrize("name, schedule, ema, device", [("restore_x4.yaml", "constant", 0.0, "cpu"),
                                                         ("restore_x4_long.yaml", "cosine", 0.999, "cpu"),
                                                         ("restore_x4_gpu.yaml", "cosine", 0.999, "auto"),
                                                         ("restore_x4_distil.yaml", "cosine", 0.0, "cpu")])
def test_committed_restorer_configs_parse_as_the_card_describes(name, schedule, ema, device):
    config = load_restorer_config(Path(__file__).resolve().parent.parent / "configs" / name)
    assert (config.lr_schedule, config.ema, config.device) == (schedule, ema, device)
    assert [c.degradation for c in config.corpora] == ["bicubic", "realistic"] and config.validation.seed == 103


@pytest.mark.slow
def test_distillation_learns_a_teachers_output_with_replicated_borders(tmp_path):
    """`teacher`: its outputs (whole image, edge-replicated borders) replace HQ; they are cached and recorded."""
    import numpy as np
    from PIL import Image

    from glyphsr_core.restore import load_restorer, save_restorer
    from glyphsr_core.restore.compact import CompactSR, blend_with_bicubic, init_as_bicubic
    from glyphsr_core.restore.run import border_context
    from glyphsr_core.tiling.context import run_tiled
    from glyphsr_core.training.restorer import FINAL, train_restorer

    trained = CompactSR(num_feat=50, num_conv=2)
    init_as_bicubic(trained, torch.Generator().manual_seed(0))
    teacher_path = save_restorer(blend_with_bicubic(trained, 0.5), tmp_path / "teacher.safetensors")
    extra = f"teacher: {teacher_path}\ngrid_weight: 1.0\ncontext: 4\nwords: 0\nctc_weight: 0.0\nhead_refit: 2.0"
    result = train_restorer(load_restorer_config(_tiny_config(tmp_path, "distil", 2, extra)))
    assert result.step == 2
    cached = sorted((tmp_path / "distil" / "teacher_targets").glob("*.png"))
    assert len(cached) == 2 * 5  # 5 training images, x4 and x8 inputs
    from glyphsr_core.data.corpus import load_corpus

    sample = load_corpus(tmp_path / "corpus_a")[0]
    lq = torch.from_numpy(np.asarray(Image.open(sample.lq_paths[4]).convert("RGB"), dtype=np.float32) / 255)
    teacher = load_restorer(teacher_path).model
    expected = run_tiled(teacher, lq.permute(2, 0, 1)[None], 4, 4096, 32, border=border_context(teacher, 32))[0]
    got = torch.from_numpy(np.asarray(Image.open(cached[0]), dtype=np.float32) / 255).permute(2, 0, 1)
    assert (got - expected).abs().max() <= 1 / 255 + 1e-6
    final = load_restorer(tmp_path / "distil" / FINAL)
    assert "teacher_sha256" in final.metadata and final.metadata["head_refit"] == 2.0
    state = torch.load(tmp_path / "distil" / "state.pt", weights_only=True)["model"]
    weights = final.model.net.state_dict()
    last = f"body.{len(final.model.net.body) - 1}.weight"
    assert all(torch.equal(weights[k], state[k]) for k in state if not k.startswith(last[:-6]))
    assert not torch.equal(weights[last], state[last])  # the refit changed the head only


def test_grid_loss_is_zero_for_bicubic_and_sees_a_phase_pattern():
    from glyphsr_core.restore.compact import CompactSR, init_as_bicubic
    from glyphsr_core.training.restorer import grid_loss

    net = CompactSR(num_feat=48, num_conv=1)
    init_as_bicubic(net, torch.Generator().manual_seed(0))
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = net(x)[..., 8:-8, 8:-8]
    assert grid_loss(out, out).item() == 0.0
    pattern = (torch.arange(out.shape[-1]) % 4 == 1).float() * 0.02
    assert grid_loss(out + pattern, out).item() > 0.002
