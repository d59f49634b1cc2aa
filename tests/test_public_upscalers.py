"""benchmarks/public_upscalers.py: the ncnn reader and the layouts, on small made-up exports (no wheels, no weights)."""

from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pu():
    spec = importlib.util.spec_from_file_location("public_upscalers", ROOT / "benchmarks" / "public_upscalers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["public_upscalers"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _fp16(values: np.ndarray) -> bytes:
    data = struct.pack("<I", 0x01306B47) + values.astype("<f2").tobytes()
    return data + b"\0" * (-len(data) % 4)


def test_reads_fp16_and_fp32_weights_biases_prelu_and_memorydata(pu):
    rng = np.random.default_rng(0)
    w1 = rng.normal(size=(3, 1, 1, 1)).astype(np.float32)  # 3 fp16 values: 6 bytes, padded to 8
    b1 = rng.normal(size=3).astype(np.float32)
    w2 = rng.normal(size=(2, 3, 3, 3)).astype(np.float32)
    b2 = rng.normal(size=2).astype(np.float32)
    slopes = rng.normal(size=3).astype(np.float32)
    mean = np.array([0.4488, 0.4371, 0.4040], np.float32)
    param = "\n".join([
        "7767517", "5 5",
        "Input in 0 1 data",
        "MemoryData mean 0 1 mean 0=1 1=1 2=3",
        "Convolution c1 1 1 data a 0=3 1=1 5=1 6=3",
        "PReLU p1 1 1 a b 0=3",
        "Convolution c2 1 1 b out 0=2 1=3 4=1 5=1 6=54",
    ])
    binary = (mean.tobytes() + _fp16(w1) + b1.tobytes() + slopes.tobytes()
              + struct.pack("<I", 0) + w2.tobytes() + b2.tobytes())
    layers = pu.parse_param(param)
    pu.read_bin(layers, binary)
    assert np.array_equal(layers[1].blobs[0], mean)
    assert np.array_equal(layers[2].blobs[0], w1.astype(np.float16).astype(np.float32))
    assert np.array_equal(layers[2].blobs[1], b1)
    assert np.array_equal(layers[3].blobs[0], slopes)
    assert np.array_equal(layers[4].blobs[0], w2) and np.array_equal(layers[4].blobs[1], b2)
    state = pu.to_compact(layers)
    assert list(state) == ["body.0.weight", "body.0.bias", "body.1.weight", "body.2.weight", "body.2.bias"]
    with pytest.raises(ValueError, match="unread bytes"):
        pu.read_bin(pu.parse_param(param), binary + b"\0\0\0\0")


def test_span_branches_compute_the_exported_kernel(pu):
    """The training branches (1x1 -> 3x3 -> 1x1 on the zero-padded input, plus the 1x1 skip) must
    compute exactly the export's 3x3 conv: that is what spandrel folds back into eval_conv."""
    generator = torch.Generator().manual_seed(1)
    weight = torch.randn(5, 4, 3, 3, generator=generator)
    bias = torch.randn(5, generator=generator)
    s = {k: torch.from_numpy(v) for k, v in pu._conv3xc("c", weight.numpy(), bias.numpy()).items()}
    x = torch.randn(1, 4, 9, 7, generator=generator)
    padded = F.pad(x, (1, 1, 1, 1))
    branches = F.conv2d(padded, s["c.conv.0.weight"], s["c.conv.0.bias"])
    branches = F.conv2d(branches, s["c.conv.1.weight"], s["c.conv.1.bias"])
    branches = F.conv2d(branches, s["c.conv.2.weight"], s["c.conv.2.bias"]) + F.conv2d(x, s["c.sk.weight"], s["c.sk.bias"])
    assert torch.allclose(branches, F.conv2d(x, weight, bias, padding=1), atol=1e-5, rtol=0)  # summation order only
    assert torch.equal(s["c.eval_conv.weight"], weight)


def test_rrdb_names_follow_the_export_order(pu):
    convs = [pu.Layer("Convolution", f"Conv_{i}", [], [], {}, [np.full((1, 1, 1, 1), i, np.float32)]) for i in range(351)]
    state = pu.to_rrdb(convs)
    assert state["conv_first.weight"].item() == 0
    assert state["body.0.rdb1.conv1.weight"].item() == 1
    assert state["body.0.rdb3.conv5.weight"].item() == 15
    assert state["body.22.rdb3.conv5.weight"].item() == 345
    assert [state[f"{n}.weight"].item() for n in ("conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last")] == [346, 347, 348, 349, 350]
    with pytest.raises(ValueError, match="RRDBNet"):
        pu.to_rrdb(convs[:-1])


def test_span_with_another_mean_is_refused(pu):
    layers = [pu.Layer("MemoryData", "m", [], ["m"], {}, [np.array([0.485, 0.456, 0.406], np.float32)])]
    with pytest.raises(ValueError, match="mean"):
        pu.to_span(layers)


def test_refuses_to_write_into_the_repository(pu):
    with pytest.raises(SystemExit):
        pu.main(["--out", str(ROOT / "weights")])
