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


class OutputExistsError(OutputError):
    """The output exists and was not to be replaced (no ``--overwrite``), also when it appeared
    while the file was being developed: the file is skipped, the existing one left as it is."""


class ImageTooLargeError(InputError):
    """The frame a file declares is larger than the configured megapixel limit (refused before
    any pixel memory is allocated)."""


class MicroISPWarning(UserWarning):
    """A problem the library worked around (e.g. an unusable colour matrix replaced by a fallback).

    Issued with :func:`warnings.warn`; the library never prints. The CLI shows each as one line.
    """


class OptionsError(MicroISPError):
    """A develop option has a value that cannot be used (``options.DevelopOptions``); ``option``
    names it as the CLI spells it (``--wb``). The CLI reports it as a usage error (exit 2)."""

    def __init__(self, option: str, message: str):
        super().__init__(f"{option}: {message}")
        self.option = option
        self.reason = message


class WhiteBalanceFallback(MicroISPWarning):
    """The white balance asked for (or the file's as-shot one) is not available; another was used."""


class CFAPhaseWarning(MicroISPWarning):
    """The samples say the green sites are not where the CFA order read says (a wrong tag)."""


class LensCorrectionSkipped(MicroISPWarning):
    """``--lens-correction`` was asked for, but lensfun cannot correct this file (no lens named,
    camera or lens not in its database, no focal length): left as it is."""


class MissingExtraError(MicroISPError):
    """A feature needs an optional dependency that is not installed (see :func:`extras.require`)."""


class BenchError(MicroISPError):
    """A benchmark cannot be set up (bad option combination, missing model file)."""


class ExportError(MicroISPError):
    """The export failed: an op outside the allowed set, or conversion was impossible."""


class PeerError(MicroISPError):
    """A peer developer (``peers``) is missing or failed on a file."""


class ModelFileError(MicroISPError):
    """A ``.tflite`` file is missing, unreadable, or not a segmented microisp export."""


class ClusterError(MicroISPError):
    """The Dask cluster cannot be started or reached, or has no workers."""
