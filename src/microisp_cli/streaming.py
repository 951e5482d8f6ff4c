"""The image being developed as an encoder in another thread reads it: rows are handed over as
they become final (:class:`StreamedImage`), and a streamed image holds only the rows not yet
encoded (:class:`RowBands`). Filled by the network stage (:mod:`stages`), read by
:func:`develop.develop_to_file`'s encoder thread."""

from __future__ import annotations

import threading

import numpy as np


class RowBands:
    """An (H, W, 3) image held only as the bands of rows not yet read by the encoder.

    The pipeline fills one band per row of tiles (:meth:`band`); the encoder reads rows in order
    (``image[a:b]``, rows already final), and every band wholly above the rows it asks for is
    dropped. The encoder compresses a band faster than the network makes the next, so a few rows
    of tiles are held, not the image. ``mirror``: the rows are read mirrored (LibRaw flip 1).
    """

    def __init__(self, shape: tuple[int, int, int], dtype, mirror: bool = False):
        self.shape, self.dtype, self.ndim = tuple(shape), np.dtype(dtype), 3
        self.itemsize = self.dtype.itemsize
        self._mirror = mirror
        self._bands: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self.shape[0]

    def band(self, y0: int, y1: int) -> np.ndarray:
        """Rows [y0, y1) to fill, all columns (the same array for every tile of a row of tiles)."""
        with self._lock:
            if y0 not in self._bands:
                self._bands[y0] = np.empty((y1 - y0, *self.shape[1:]), self.dtype)
            return self._bands[y0]

    def __getitem__(self, rows: slice) -> np.ndarray:
        a, b = rows.start or 0, self.shape[0] if rows.stop is None else min(self.shape[0], rows.stop)
        with self._lock:
            for start in [s for s, band in self._bands.items() if s + len(band) <= a]:
                del self._bands[start]  # read: the encoder reads in order
            parts = [band[max(a, s) - s:min(b, s + len(band)) - s]
                     for s, band in sorted(self._bands.items()) if s < b and s + len(band) > a]
        block = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return block[:, ::-1] if self._mirror else block


class StreamedImage:
    """The image being developed, as an encoder in another thread reads it.

    ``image[a:b]`` waits until rows ``a:b`` are final, so the encoder runs beside the network
    (:func:`develop_to_file`); ``shape``, ``dtype``, ``ndim`` and ``itemsize`` wait for the
    pipeline to start. After :meth:`abort` every wait raises :class:`StreamAborted`, on either side.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._image: np.ndarray | None = None
        self._rows = 0
        self._aborted = False

    def start(self, image: np.ndarray) -> None:
        with self._condition:
            self._image = image
            self._condition.notify_all()

    def ready(self, rows: int) -> None:
        """The first ``rows`` rows are final; raises :class:`StreamAborted` once aborted."""
        with self._condition:
            if self._aborted:
                raise StreamAborted
            self._rows = rows
            self._condition.notify_all()

    def abort(self) -> None:
        with self._condition:
            self._aborted = True
            self._condition.notify_all()

    def _wait(self, rows: int) -> np.ndarray:
        with self._condition:
            self._condition.wait_for(lambda: self._aborted or (
                self._image is not None and self._rows >= min(rows, len(self._image))))
            if self._aborted:
                raise StreamAborted
            return self._image

    def __getitem__(self, rows: slice) -> np.ndarray:
        return self._wait(1 << 62 if rows.stop is None else rows.stop)[rows]

    def __getattr__(self, name: str):  # shape, dtype, ndim, itemsize of the image
        if name in ("shape", "dtype", "ndim", "itemsize"):
            return getattr(self._wait(0), name)
        raise AttributeError(name)


class StreamAborted(Exception):
    """A :class:`StreamedImage` was abandoned (its pipeline or its encoder failed)."""
