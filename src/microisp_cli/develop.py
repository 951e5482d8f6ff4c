"""Developing one RAW file: decode -> condition and pack -> tiled network -> render -> orient -> encode.

The library entry points, usable without the CLI::

    from microisp_cli.develop import develop, develop_to_file, make_runner
    image = develop("IMG.dng")                       # (H, W, 3) uint16 sRGB, oriented
    develop_to_file("IMG.dng", "IMG.png", bits=8)    # atomic write, sRGB profile embedded

For a batch, load the weights and make the runner once and pass both to every call;
:func:`develop_file` is one step of a batch (skip, develop, a :class:`FileResult` instead of an
exception for a bad file), shared by the serial CLI and the Dask tasks of :mod:`parallel`.
No full-frame float32 array is ever held: the source conditions tiles on demand and the sink
renders each output tile straight into the preallocated uint8/uint16 image.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np

from . import defaults, encode, render
from .bayer import PackedBayerSource
from .errors import MicroISPError
from .raw import DumpFormat, Mosaic, decode, grey_world
from .runtimes import BACKENDS
from .runtimes.base import SegmentRunner
from .weights import Conditioning, Weights, load_weights

Progress = Callable[[int, int], None]



def make_runner(weights: Weights, backend: str = defaults.BACKEND, model: str | Path | None = None,
                threads: int | None = defaults.THREADS) -> SegmentRunner:
    """The runtime that runs ``weights``' network: ``"openvino"`` (the default) and ``"tf"``
    (TensorFlow) build it from the weights; ``"tflite"`` (LiteRT) runs ``model``, a segmented
    ``microisp export --tflite`` file of the same model and conditioning as ``weights``."""
    if backend == "openvino":
        from .runtimes.openvino import OpenVINORunner

        return OpenVINORunner(weights, threads=threads)
    if backend == "tf":
        from .runtimes.tensorflow import TensorFlowRunner

        return TensorFlowRunner(weights, threads=threads)
    if backend == "tflite":
        if model is None:
            raise MicroISPError("the tflite backend runs an exported file: give --model FILE "
                                "(make one with: microisp export --tflite -o FILE)")
        from .runtimes.litert import LiteRTRunner

        runner = LiteRTRunner(model, threads=threads)
        runner.check_weights(weights)
        return runner
    raise MicroISPError(f"unknown backend {backend!r}; available: {', '.join(BACKENDS)}")


#: Runners already built, per thread, by weights content, backend, model and threads: one per
#: batch, reused when a batch runs again in the same process (tests, notebooks, Dask workers).
_RUNNERS = threading.local()


def cached_runner(weights: Weights, backend: str = defaults.BACKEND, model: str | Path | None = None,
                  threads: int | None = defaults.THREADS) -> SegmentRunner:
    """:func:`make_runner`, built once per thread for the same weights (by content), backend,
    model and threads; only the latest is kept (a runner holds a compiled network). Per thread
    because a LiteRT interpreter must not run in two threads at once."""
    digest = hashlib.sha256()
    for name in sorted(weights.params):
        digest.update(name.encode())
        digest.update(weights.params[name].tobytes())
    key = (weights.config, weights.conditioning, digest.hexdigest(), backend, threads,
           None if model is None else str(model))
    cache: dict[tuple, SegmentRunner] = _RUNNERS.__dict__.setdefault("runners", {})
    if key not in cache:
        cache.clear()
        cache[key] = make_runner(weights, backend, model=model, threads=threads)
    return cache[key]


def develop_mosaic(mosaic: Mosaic, weights: Weights, runner: SegmentRunner | None = None,
                   bits: int = defaults.BITS_ARRAY, tile_size: int = defaults.TILE_SIZE,
                   attention: str = defaults.ATTENTION, progress: Progress | None = None) -> np.ndarray:
    """A decoded :class:`Mosaic` -> (H, W, 3) uint8/uint16 sRGB, oriented (possibly a view)."""
    runner = runner if runner is not None else make_runner(weights)
    return run_pipeline(mosaic, weights.conditioning, runner, bits, tile_size, attention, progress)


class StreamedImage:
    """The image :func:`run_pipeline` is developing, as an encoder in another thread reads it.

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


def run_pipeline(mosaic: Mosaic, conditioning: Conditioning, runner: SegmentRunner,
                 bits: int = defaults.BITS_ARRAY, tile_size: int = defaults.TILE_SIZE,
                 attention: str = defaults.ATTENTION, progress: Progress | None = None,
                 timings: dict[str, float] | None = None,
                 stream: StreamedImage | None = None) -> np.ndarray:
    """:func:`develop_mosaic` for a runner and the input ``conditioning`` it expects.

    ``timings``, if given, gets the seconds spent conditioning and packing the input (``"pack"``)
    and rendering the output tiles (``"render"``) added to it; the rest is the network's.
    ``stream``: told of the (oriented) image and of each row as it becomes final (rows are
    final in order unless the orientation mirrors or turns rows: then all at the end).
    """
    dtype = render.dtype_for_bits(bits)
    source = PackedBayerSource(mosaic.data, mosaic.cfa, mosaic.black, mosaic.white, mosaic.wb,
                               conditioning, min_size=runner.config.min_packed_size)
    top, left, height, width = source.crop
    out = np.empty((height, width, 3), dtype)
    image = render.orient(out, mosaic.orientation)
    matrix = mosaic.cam_to_srgb
    in_order = stream is not None and mosaic.orientation in (0, 1)  # image rows are out's rows
    filled = np.zeros(height, np.int64) if in_order else None
    final = 0
    if stream is not None:
        stream.start(image)

    def sink(y: int, x: int, rgb: np.ndarray) -> None:
        y0, x0 = max(y, top), max(x, left)
        y1, x1 = min(y + rgb.shape[0], top + height), min(x + rgb.shape[1], left + width)
        if y0 >= y1 or x0 >= x1:
            return
        tile = rgb[y0 - y:y1 - y, x0 - x:x1 - x]
        out[y0 - top:y1 - top, x0 - left:x1 - left] = render.render_tile(
            tile, conditioning.output, matrix, bits)
        if in_order:
            nonlocal final
            filled[y0 - top:y1 - top] += x1 - x0
            while final < height and filled[final] == width:
                final += 1
            stream.ready(final)

    from .tiling import run_tiled

    if timings is not None:
        source.read = _timed(source.read, "pack", timings)   # this call's own source object
        sink = _timed(sink, "render", timings)
    run_tiled(runner, source, sink, tile_size, attention, progress)
    if stream is not None:
        stream.ready(image.shape[0])
    return image


def _timed(function: Callable, stage: str, timings: dict[str, float]) -> Callable:
    """``function``, adding the seconds spent in it to ``timings[stage]``."""
    timings.setdefault(stage, 0.0)

    def timed(*args):
        start = time.perf_counter()
        try:
            return function(*args)
        finally:
            timings[stage] += time.perf_counter() - start

    return timed


def with_cfa(mosaic: Mosaic, cfa: str) -> Mosaic:
    """``mosaic`` read with another CFA order (files whose CFA tag is wrong); grey-world white
    balance is measured again for the new order."""
    if cfa == mosaic.cfa:
        return mosaic
    wb = grey_world(mosaic.data, cfa, mosaic.black, mosaic.white) if mosaic.wb_source == "grey world" \
        else mosaic.wb
    return dataclasses.replace(mosaic, cfa=cfa, wb=wb, description=f"{mosaic.description}, read as {cfa}")


def develop(path: str | Path, weights: Weights | str | Path | None = None, *,
            runner: SegmentRunner | None = None, bits: int = defaults.BITS_ARRAY,
            tile_size: int = defaults.TILE_SIZE, attention: str = defaults.ATTENTION,
            dump: DumpFormat | None = None, cfa: str | None = None,
            max_megapixels: float | None = defaults.MAX_MEGAPIXELS,
            progress: Progress | None = None) -> np.ndarray:
    """Develop the RAW file (or sensor dump) at ``path`` into an (H, W, 3) sRGB array.

    ``weights``: a :class:`Weights`, a bundled name or a path (None: the default weights).
    ``runner``: a runtime made by :func:`make_runner` (made here when None; pass one for batches).
    ``bits``: 8 or 16 (uint8 or uint16 result). ``dump``: how to read headerless dumps and
    ``.npy`` mosaics. ``cfa``: overrides the CFA order a file states (for wrong metadata).
    ``progress(done, total)``: called as network tiles complete.
    ``max_megapixels``: larger frames are refused before their pixels are read (None: no limit).
    Raises :class:`errors.InputError` for unreadable, unsupported or too large inputs. Metadata
    that had to be replaced by a fallback is reported with :class:`errors.MicroISPWarning`
    warnings (:mod:`warnings`); nothing is printed.
    """
    if not isinstance(weights, Weights):
        weights = load_weights(weights)
    mosaic = decode(path, dump, max_megapixels)
    if cfa is not None:
        mosaic = with_cfa(mosaic, cfa)
    return develop_mosaic(mosaic, weights, runner, bits, tile_size, attention, progress)


def develop_to_file(path: str | Path, output: str | Path, weights: Weights | str | Path | None = None,
                    *, runner: SegmentRunner | None = None, bits: int | None = None,
                    quality: int = defaults.JPEG_QUALITY, overwrite: bool = False,
                    tile_size: int = defaults.TILE_SIZE, attention: str = defaults.ATTENTION,
                    dump: DumpFormat | None = None, cfa: str | None = None,
                    max_megapixels: float | None = defaults.MAX_MEGAPIXELS,
                    progress: Progress | None = None) -> Path:
    """Develop ``path`` and write it to ``output`` (format from its extension), atomically.

    ``bits``: None takes the format's default (PNG and JPEG 8, TIFF 16). Raises
    :class:`errors.OutputError` if ``output`` exists and not ``overwrite``, before any work.
    """
    output = Path(output)
    kind = encode.format_for(output)
    bits = bits if bits is not None else encode.default_bits(output)
    if kind == "jpeg" and bits != 8:
        raise encode.OutputError(f"{output}: JPEG is 8-bit only (got --bits {bits})")
    if output.exists() and not overwrite:
        raise encode.OutputError(f"{output}: exists (use --overwrite to replace it)")
    if kind != "png":
        image = develop(path, weights, runner=runner, bits=bits, tile_size=tile_size,
                        attention=attention, dump=dump, cfa=cfa, max_megapixels=max_megapixels,
                        progress=progress)
        return encode.write_image(output, image, quality=quality, overwrite=overwrite)
    # PNG: the encoder compresses rows in a thread as the network finishes them
    if not isinstance(weights, Weights):
        weights = load_weights(weights)
    mosaic = decode(path, dump, max_megapixels)
    if cfa is not None:
        mosaic = with_cfa(mosaic, cfa)
    runner = runner if runner is not None else make_runner(weights)
    stream, failure = StreamedImage(), []

    def encoder() -> None:
        try:
            encode.write_image(output, stream, quality=quality, overwrite=overwrite)
        except StreamAborted:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            failure.append(exc)
            stream.abort()

    thread = threading.Thread(target=encoder, name="microisp-encode", daemon=True)
    thread.start()
    try:
        run_pipeline(mosaic, weights.conditioning, runner, bits, tile_size, attention, progress,
                     stream=stream)
    except StreamAborted:
        pass  # the encoder failed: its error is raised below
    except BaseException:
        stream.abort()
        thread.join()
        raise
    thread.join()
    if failure:
        raise failure[0]
    return output


# --- one file of a batch ----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class FileResult:
    """What became of one file of a batch (:func:`develop_file`, ``parallel.develop_files``).

    ``status``: ``"done"`` (written), ``"skipped"`` (the output exists and not ``overwrite``) or
    ``"failed"``. ``message``: why it failed or was skipped, one line. ``warnings``: the library's
    warnings (metadata fallbacks), first line of each. ``seconds``: time spent developing and
    writing. ``replaced``: an existing output was overwritten. ``worker``: the Dask worker that
    developed it (parallel runs). ``detail``: the traceback of an unexpected error (parallel runs).
    """

    source: Path
    output: Path
    status: Literal["done", "skipped", "failed"]
    message: str = ""
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0
    replaced: bool = False
    worker: str | None = None
    detail: str | None = None


def skip_result(source: str | Path, output: str | Path, overwrite: bool = False) -> FileResult | None:
    """The ``"skipped"`` result when ``output`` exists and not ``overwrite``; None when there is work."""
    output = Path(output)
    if output.exists() and not overwrite:
        return FileResult(Path(source), output, "skipped",
                          f"{output} exists (use --overwrite to replace it)")
    return None


def develop_file(source: str | Path, output: str | Path, weights: Weights, *, runner: SegmentRunner,
                 overwrite: bool = False, progress: Progress | None = None, **options) -> FileResult:
    """:func:`develop_to_file` as one step of a batch: never raises for a bad input or an
    unwritable output, but returns a ``"failed"`` :class:`FileResult` naming the cause (one
    line); an existing ``output`` is skipped unless ``overwrite``. ``options``: those of
    :func:`develop_to_file` (``bits``, ``quality``, ``tile_size``, ``attention``, ``dump``, ``cfa``,
    ``max_megapixels``). Errors that are not :class:`MicroISPError` or :class:`OSError` are bugs
    and propagate. The serial CLI and every Dask task run this same function."""
    source, output = Path(source), Path(output)
    skipped = skip_result(source, output, overwrite)
    if skipped is not None:
        return skipped
    replacing = output.exists()
    started = time.perf_counter()
    failure = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            develop_to_file(source, output, weights, runner=runner, overwrite=overwrite,
                            progress=progress, **options)
        except MicroISPError as exc:
            failure = str(exc).replace("\n", " ")
        except OSError as exc:
            failure = f"{exc.strerror or exc}"
    notes = tuple((str(item.message).splitlines() or [""])[0] for item in caught
                  if item.category.__module__.startswith("microisp_cli"))
    if failure is not None:
        return FileResult(source, output, "failed", failure, notes)
    return FileResult(source, output, "done", warnings=notes, seconds=time.perf_counter() - started,
                      replaced=replacing)
