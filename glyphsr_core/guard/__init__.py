"""Keep Words (and the Text Guard, its name in the diffusion graphs): put back the words an upscale
got wrong with the least visible repair that reads right (see `keep_words`)."""

from .core import COLOR_METHODS, TEXT_WEIGHT_STEP, GuardResult, Reader, Resampler, ResampleRound, ocr_reader, resample_round
from .keep_words import ALL_TEXT, CHANGED_WORDS, KEEP_MODES, guard_batch, guard_image, keep_words, keep_words_batch
from .masks import mask_crop, word_mask
from .report import GuardReport, WordRepair, format_guard_report

__all__ = ["ALL_TEXT", "CHANGED_WORDS", "COLOR_METHODS", "KEEP_MODES", "TEXT_WEIGHT_STEP", "GuardReport",
           "GuardResult", "Reader", "ResampleRound", "Resampler", "WordRepair", "format_guard_report", "guard_batch",
           "guard_image", "keep_words", "keep_words_batch", "mask_crop", "ocr_reader", "resample_round", "word_mask"]
