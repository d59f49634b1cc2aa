"""The one base class of the errors a user can fix by changing an input.

Entry points (the CLI) print these as a one-line message; anything else is a bug or an
environment problem and keeps its traceback. Every specific input error of the pack derives from
`GlyphSRInputError` as well as from the built-in class callers already catch (ValueError,
FileNotFoundError, RuntimeError), so existing `except ValueError` code keeps working.
"""

from __future__ import annotations

from typing import Sequence, TypeVar

A = TypeVar("A")
B = TypeVar("B")


class GlyphSRInputError(Exception):
    """An input (file, option, widget value, batch) that the user must change; the message says how."""


class InvalidInputError(GlyphSRInputError, ValueError):
    """An option or value out of range, of the wrong kind, or inconsistent with another."""


class InputNotFoundError(GlyphSRInputError, FileNotFoundError):
    """A file or folder the user named does not exist or is not what it should be."""


class MissingPackageError(GlyphSRInputError, ImportError):
    """An optional package a feature needs is not installed (the message names it)."""


class ImageInputError(InvalidInputError):
    """An image input (a file, a tensor) has a format, shape or content the method cannot use."""


class BatchSizeError(InvalidInputError):
    """Two batched inputs whose sizes cannot be paired."""


def pair_batches(name_a: str, a: Sequence[A], name_b: str, b: Sequence[B], *,
                 one_to_many: tuple[str, ...] = ("a", "b")) -> list[tuple[A, B]]:
    """Pair item i of `a` with item i of `b`; a batch of one pairs with every item of the other.

    `one_to_many` says which side may be the batch of one ("a", "b" or both). Any other mismatch
    raises BatchSizeError naming both inputs and sizes: silently reusing the last item would give
    image 3 the words of image 2.
    """
    if len(a) == len(b):
        return list(zip(a, b))
    if len(a) == 1 and "a" in one_to_many:
        return [(a[0], item) for item in b]
    if len(b) == 1 and "b" in one_to_many:
        return [(item, b[0]) for item in a]
    ones = " or ".join(f"one '{name}'" for side, name in (("a", name_a), ("b", name_b)) if side in one_to_many)
    raise BatchSizeError(f"'{name_a}' holds {len(a)} item(s) but '{name_b}' holds {len(b)}: connect batches of the "
                         f"same size" + (f" (or {ones})" if ones else ""))
