"""`python -m glyphsr_core`: our input errors are one line and exit 2; anything else keeps its traceback."""

import numpy as np
import pytest

import glyphsr_core.commands.analyze as analyze
from glyphsr_core.cli import main
from glyphsr_core.errors import GlyphSRInputError, InvalidInputError


def _raise(exc):
    def run(args):
        raise exc
    return run


def test_an_internal_value_error_is_not_turned_into_a_user_error(monkeypatch):
    def run(args):
        np.zeros(2).reshape(3)  # a ValueError from numpy's internals: a bug, not the user's input

    monkeypatch.setattr(analyze, "run", run)
    with pytest.raises(ValueError, match="reshape"):
        main(["analyze", "in.png"])


def test_an_input_error_is_one_line_and_verbose_adds_its_traceback(monkeypatch, capsys):
    monkeypatch.setattr(analyze, "run", _raise(InvalidInputError("--scale must be >= 1, got 0")))
    assert main(["analyze", "in.png"]) == 2
    assert capsys.readouterr().err == "error: --scale must be >= 1, got 0\n"
    assert main(["-v", "analyze", "in.png"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and err.endswith("error: --scale must be >= 1, got 0\n")


def test_a_missing_package_outside_our_checks_keeps_its_traceback(monkeypatch):
    monkeypatch.setattr(analyze, "run", _raise(ImportError("No module named 'somewhere_deep'")))
    with pytest.raises(ImportError):
        main(["analyze", "in.png"])


def test_every_input_error_class_of_the_pack_is_a_glyphsr_input_error():
    from glyphsr_core.data.corpus import CorpusError
    from glyphsr_core.data.datasets import DatasetError, ImageDecodeError
    from glyphsr_core.data.degrade import DegradationError
    from glyphsr_core.diffusion.models import MissingWeightsError, ModelLoadError
    from glyphsr_core.sampling.fusion import FusionError
    from glyphsr_core.text.glyphs import FontError
    from glyphsr_core.imageops import ImageInputError
    from glyphsr_core.ocr.engine import OcrUnavailableError
    from glyphsr_core.diffusion.sampler import PipelineInputError
    from glyphsr_core.sampling.pingpong import ScheduleError
    from glyphsr_core.training.text_branch_config import ConfigError
    from glyphsr_core.tscontrolnet.errors import BundleError
    from glyphsr_core.types import TextFormatError
    from glyphsr_core.vlm.errors import VLMError

    for cls in (CorpusError, DatasetError, ImageDecodeError, DegradationError, MissingWeightsError, ModelLoadError,
                FusionError, FontError, ImageInputError, OcrUnavailableError, PipelineInputError, ScheduleError,
                ConfigError, BundleError, TextFormatError, VLMError):
        assert issubclass(cls, GlyphSRInputError), cls
    assert issubclass(MissingWeightsError, FileNotFoundError) and issubclass(ScheduleError, ValueError)


@pytest.mark.parametrize("flags, named", [
    (["--beta", "1.5"], "beta must be between 0 and 1"),
    (["--beta-scene", "-0.1"], "beta_scene must be between 0 and 1"),
    (["--mask-dilation", "-1"], "mask_dilation"),
    (["--denoise", "0"], "denoise"),
    (["--strength", "-1"], "strength"),
    (["--steps", "0"], "steps"),
    (["--scale", "0"], "scale"),
    (["--min-confidence", "2"], "min_confidence"),
    (["--max-words", "-1"], "max_words"),
    (["--switch-at", "1.5"], "switch_at"),
    (["--schedule", "pattern", "--pattern", "SXT"], "pattern"),
    (["--cfg", "-1"], "cfg"),
])
def test_upscale_checks_every_option_before_loading_anything(monkeypatch, capsys, tmp_path, flags, named):
    pytest.importorskip("torch")
    import glyphsr_core.diffusion.sampler as sampler
    import glyphsr_core.method as method

    def must_not_load(*args, **kwargs):
        raise AssertionError("a model was loaded before the options were checked")

    monkeypatch.setattr(sampler.GlyphSRPipeline, "from_files", must_not_load)
    monkeypatch.setattr(method, "caption_with_vlm", must_not_load)
    monkeypatch.setattr(method, "text_restore", must_not_load)
    code = main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "--base", str(tmp_path),
                 "--vlm", str(tmp_path), *flags])
    assert code == 2
    assert named in capsys.readouterr().err
