"""Words a person corrected by hand, kept with the workflow and re-applied to every new OCR result.

`corrections`: the stored edits (change, delete, add), how they are matched to a new OCR result
(box overlap) and how they are worked out from a reviewed word list; `document`: the bounded,
validated review a browser sends back; `desk`: the thread-safe waiting room where a running node
waits for that review, and the browsers that have the dialog. Nothing here knows ComfyUI: the node and its HTTP route are thin adapters.
"""

from .corrections import (MATCH_IOU, Applied, Edit, apply_corrections, corrections_from_review, corrections_to_json,
                          parse_corrections)
from .desk import Browsers, ReviewDesk, WaitOutcome
from .document import MAX_BODY_BYTES, MAX_TEXT_CHARS, MAX_WORDS, ReviewDocumentError, ReviewWord, validate_review

__all__ = ["MATCH_IOU", "Applied", "Edit", "apply_corrections", "corrections_from_review", "corrections_to_json",
           "parse_corrections", "Browsers", "ReviewDesk", "WaitOutcome", "MAX_BODY_BYTES", "MAX_TEXT_CHARS", "MAX_WORDS",
           "ReviewDocumentError", "ReviewWord", "validate_review"]
