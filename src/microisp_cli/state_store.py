"""The state between attention points: a (h, w, c) array in an unlinked temporary file, mapped
into memory a band of rows at a time (see :class:`StateStore` and docs/tiling.md)."""

from __future__ import annotations

import errno
import mmap
import os
import tempfile

import numpy as np


class StateStore:
    """A (h, w, c) array kept in an unlinked temporary file and used a band of rows at a time.

    :meth:`band` maps rows ``[y0, y1)`` (all columns) into memory: reads and writes go straight
    into the file's pages, with no copy through system calls, and only the mapped band counts in
    this process's resident memory. The rest is page cache of a file in ``directory`` (None:
    ``tempfile``'s, i.e. ``$TMPDIR`` or /tmp), which the kernel can write back and drop under
    memory pressure (``TMPDIR=/dev/shm`` is faster, but holds it in RAM; docs/tiling.md).
    """

    def __init__(self, shape: tuple[int, int], channels: int, dtype=np.float32,
                 directory: str | None = None):
        self.shape = (int(shape[0]), int(shape[1]), int(channels))
        self.dtype = np.dtype(dtype)
        self._row = self.shape[1] * self.shape[2] * self.dtype.itemsize
        self._file = tempfile.TemporaryFile(prefix="microisp-state-", dir=directory)
        size = max(1, self.shape[0] * self._row)
        try:  # reserved blocks: faster first writes, and no SIGBUS in a map on a full disk
            os.posix_fallocate(self._file.fileno(), 0, size)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # e.g. no space: say so now
                self._file.close()
                raise
            os.ftruncate(self._file.fileno(), size)  # a file system without it

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
