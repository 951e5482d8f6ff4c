"""The state between attention points: a (h, w, c) array in an unlinked temporary file, mapped
into memory a band of rows at a time (see :class:`StateStore` and docs/tiling.md)."""

from __future__ import annotations

import errno
import mmap
import os
import tempfile

import numpy as np

from .errors import ScratchSpaceError


#: A RAM file system for the state when memory is plentiful (see :func:`state_directory`).
RAM_DIRECTORY = "/dev/shm"
#: The state goes to RAM_DIRECTORY only when this many times its size is available (MemAvailable).
RAM_MARGIN = 4


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo in bytes (None where there is none)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def state_directory(size: int, directory: str | None = None) -> str | None:
    """Where a state file of ``size`` bytes goes: ``directory`` if given, ``$TMPDIR`` if set;
    else RAM_DIRECTORY when the machine has RAM_MARGIN times the size available (no page-cache
    bookkeeping of a disk file: about 2 s less system time per 24 MP, docs/tiling.md); else
    ``tempfile``'s default folder (/tmp), whose pages the kernel can write back under pressure."""
    if directory is not None or os.environ.get("TMPDIR"):
        return directory
    free = available_memory()
    if free is None or free < RAM_MARGIN * size or not os.path.isdir(RAM_DIRECTORY):
        return None
    return RAM_DIRECTORY


class StateStore:
    """A (h, w, c) array kept in an unlinked temporary file and used a band of rows at a time.

    :meth:`band` maps rows ``[y0, y1)`` (all columns) into memory: reads and writes go straight
    into the file's pages, with no copy through system calls, and only the mapped band counts in
    this process's resident memory. The file is in :func:`state_directory`: in RAM when memory is
    plentiful, else in the temporary folder, whose pages the kernel can write back and drop under
    memory pressure. If a RAM file system has no room after all, the temporary folder is used.
    """

    def __init__(self, shape: tuple[int, int], channels: int, dtype=np.float32,
                 directory: str | None = None):
        self.shape = (int(shape[0]), int(shape[1]), int(channels))
        self.dtype = np.dtype(dtype)
        self._row = self.shape[1] * self.shape[2] * self.dtype.itemsize
        size = max(1, self.shape[0] * self._row)
        chosen = state_directory(size, directory)
        try:
            try:
                self._file = self._reserve(chosen, size)
            except OSError:
                if chosen != RAM_DIRECTORY:
                    raise
                chosen = None
                self._file = self._reserve(None, size)  # /dev/shm full (a container's small one)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES):
                raise
            folder = chosen or tempfile.gettempdir()
            raise ScratchSpaceError(
                f"no room for the network's scratch file ({size / 1e6:.0f} MB) in {folder} "
                f"({exc.strerror}): this is not the output's disk; set TMPDIR to a folder with room"
            ) from None

    @staticmethod
    def _reserve(directory: str | None, size: int):
        handle = tempfile.TemporaryFile(prefix="microisp-state-", dir=directory)
        try:  # reserved blocks: faster first writes, and no SIGBUS in a map on a full disk
            os.posix_fallocate(handle.fileno(), 0, size)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # e.g. no space: say so now
                handle.close()
                raise
            os.ftruncate(handle.fileno(), size)  # a file system without it
        return handle

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def band(self, y0: int, y1: int) -> np.ndarray:
        """Rows ``[y0, y1)``, all columns, as a (y1 - y0, w, c) array on a shared memory map of
        the file: writes go straight into its pages. The map is released with the last
        reference to the array or a view of it."""
        offset = y0 * self._row
        start = offset // mmap.ALLOCATIONGRANULARITY * mmap.ALLOCATIONGRANULARITY
        length = offset - start + (y1 - y0) * self._row
        flags = mmap.MAP_SHARED  # pages fault in as the windows reach them (MAP_POPULATE: a stall)
        pages = mmap.mmap(self._file.fileno(), max(1, length), flags=flags, offset=start)
        return np.ndarray((y1 - y0, *self.shape[1:]), self.dtype, pages, offset - start)

    def write(self, y0: int, x0: int, data: np.ndarray) -> None:
        self.band(y0, y0 + data.shape[0])[:, x0:x0 + data.shape[1]] = data

    def read(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        return self.band(y0, y1)[:, x0:x1].copy()
