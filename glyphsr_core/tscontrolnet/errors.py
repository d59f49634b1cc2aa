"""Errors of the TS-ControlNet bundle tools."""


class BundleError(ValueError):
    """A file or state dict that is not a usable TS-ControlNet branch or bundle."""
