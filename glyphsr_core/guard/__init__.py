"""Text Guard: re-sample or repaint the words an upscale got wrong (see `core`)."""

from .core import (COLOR_METHODS, TEXT_WEIGHT_STEP, GuardResult, Reader, Resampler, ResampleRound, guard_batch,
                   guard_image, ocr_reader, resample_round)
from .masks import mask_crop, word_mask
from .report import GuardReport, WordRepair, format_guard_report

__all__ = ["COLOR_METHODS", "TEXT_WEIGHT_STEP", "GuardReport", "GuardResult", "Reader", "ResampleRound", "Resampler",
           "WordRepair", "format_guard_report", "guard_batch", "guard_image", "mask_crop", "ocr_reader",
           "resample_round", "word_mask"]
