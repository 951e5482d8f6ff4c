"""The library's errors: one base class, a few precise subclasses.

Library code raises these for problems with what the user gave it (files, options, weights); the
CLI turns them into a one-line message and an exit code. Anything else is a bug and keeps its
traceback.
"""


class MicroISPError(Exception):
    """Base class of every error microisp raises on purpose."""


class InputError(MicroISPError):
    """An input file cannot be read or decoded (missing, empty, truncated, not a RAW)."""


class UnsupportedSensorError(InputError):
    """The file is a RAW, but not a 2x2 Bayer mosaic (X-Trans, Foveon, linear DNG, ...)."""


class WeightsError(MicroISPError):
    """A weights file or name is missing, corrupt, or does not match its manifest."""


class OutputError(MicroISPError):
    """An output cannot be written (unwritable location, unknown format, exists already)."""


class ImageTooLargeError(InputError):
    """The frame a file declares is larger than the configured megapixel limit (refused before
    any pixel memory is allocated)."""


class MicroISPWarning(UserWarning):
    """A problem the library worked around (e.g. an unusable colour matrix replaced by a fallback).

    Issued with :func:`warnings.warn`; the library never prints. The CLI shows each as one line.
    """


class MissingExtraError(MicroISPError):
    """A feature needs an optional dependency that is not installed (see :func:`extras.require`)."""
