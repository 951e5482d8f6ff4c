"""Opening the files a user names: regular files only, of bounded size; ``.npy`` headers read
before any sample.

A FIFO, a socket or a device (``/dev/zero``, ``/dev/urandom``) named as an input, a weights
manifest or a model would block a read forever or never end; every file microisp reads is first
checked here. The file is opened with ``O_NONBLOCK`` (opening a FIFO then returns at once) and
checked on the opened descriptor, so it cannot be swapped for a FIFO between the check and the read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

import numpy as np

#: What a file type is called in messages.
_KINDS = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a directory"}


class Unreadable(Exception):
    """Why a file cannot be read, without its path (the caller names it)."""


def not_regular(mode: int) -> str | None:
    """Why a file of this ``st_mode`` cannot be read as a file ("is a FIFO (named pipe)" ...), or
    None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return f"is {_KINDS.get(stat.S_IFMT(mode), 'not a regular file')}, not a regular file"


def open_regular(path: str | Path, error: type[Exception] = Unreadable, max_bytes: int | None = None):
    """A binary file object on ``path``, which must be a regular file of at most ``max_bytes``.

    Raises ``error(message)`` (one line, without the path: ``is a FIFO (named pipe), not a regular
    file``) otherwise, or when it cannot be opened.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise error(f"cannot be read ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        problem = not_regular(info.st_mode)
        if problem is None and max_bytes is not None and info.st_size > max_bytes:
            problem = f"is too large ({info.st_size} bytes; at most {max_bytes} expected)"
        if problem is not None:
            raise error(problem)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | Path, max_bytes: int) -> bytes:
    """The bytes of ``path`` (see :func:`open_regular`), at most ``max_bytes``; :class:`Unreadable`
    otherwise."""
    with open_regular(path, Unreadable, max_bytes) as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:  # grew while read
        raise Unreadable(f"is too large (more than {max_bytes} bytes)")
    return data


def npy_header(f: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, Fortran order, dtype) from the header of the ``.npy`` stream ``f`` (a file, a zip
    member), which is left at the first sample; ValueError for a header that is not one."""
    from numpy.lib import format as npy

    version = npy.read_magic(f)
    read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
    shape, fortran, dtype = read(f)
    return tuple(int(n) for n in shape), bool(fortran), np.dtype(dtype)


def npy_shaped(flat: np.ndarray, shape: tuple[int, ...], fortran: bool) -> np.ndarray:
    """The samples ``flat`` read after a ``.npy`` header, as the array it declares."""
    return flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)
