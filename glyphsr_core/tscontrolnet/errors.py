"""Errors of the TS-ControlNet bundle tools."""


from ..errors import InvalidInputError


class BundleError(InvalidInputError):
    """A file or state dict that is not a usable TS-ControlNet branch or bundle."""
