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


class ScratchSpaceError(MicroISPError):
    """The network's scratch file (the state between attention points, in ``$TMPDIR``) cannot be
    made: no room there, or the folder cannot be written."""


class MetadataError(MicroISPError):
    """The native metadata library (Exiv2) crashed or failed on a file (in its own process: the
    file fails, the batch goes on)."""


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


#: What an allocation that failed inside a native library looks like in its exception's text.
_MEMORY_SIGNS = ("bad_alloc", "failed to map segment", "cannot allocate memory", "out of memory",
                 "unable to allocate", "can't alloc")


def out_of_memory(exc: BaseException, doing: str = "develop it") -> str | None:
    """The one-line cause ``not enough memory to DOING (...)`` when ``exc`` is running out of
    memory, in whatever form it arrives: ``MemoryError``, ``OSError`` ENOMEM, or a native
    library's ``RuntimeError`` (``std::bad_alloc``) or ``ImportError`` (a shared library that
    could not be mapped) under a memory limit (``ulimit -v``, a container). What was needed is
    said when the error says it, and the address-space limit when there is one. None otherwise."""
    import errno
    import re

    text = str(exc)
    memory = isinstance(exc, MemoryError) or (isinstance(exc, OSError) and exc.errno == errno.ENOMEM) \
        or (isinstance(exc, (RuntimeError, ImportError, OSError))
            and any(sign in text.lower() for sign in _MEMORY_SIGNS))
    if not memory:
        return None
    needed = re.search(r"allocate ([\d.]+ ?[KMGTP]i?B)", text)
    library = re.search(r"([\w.+-]+\.so[\w.]*): failed to map segment", text)
    if needed:
        detail = f"{needed.group(1).replace('. ', ' ')} more were needed"
    elif library:
        detail = f"{library.group(1)} could not be loaded"
    elif "bad_alloc" in text:
        detail = "std::bad_alloc"
    elif "can't alloc" in text:  # OpenVINO's CPU plugin compiling a graph
        detail = "can't alloc"
    else:
        detail = (getattr(exc, "strerror", None) or text.splitlines()[-1] if text.strip() else "MemoryError")
    return f"not enough memory to {doing} ({detail}{address_space_limit()})"


def address_space_limit() -> str:
    """``; address space limited to N MB (ulimit -v)`` when this process has such a limit."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    except (ImportError, OSError, ValueError):
        return ""
    return "" if soft == resource.RLIM_INFINITY else f"; address space limited to {soft // 2**20} MB (ulimit -v)"
