"""Developing one RAW file: decode -> condition and pack -> tiled network -> render -> orient -> encode.

The library entry points, usable without the CLI::

    from microisp_cli.develop import develop, develop_to_file, make_runner
    image = develop("IMG.dng")                          # (H, W, 3) uint16 sRGB, oriented
    develop_to_file("IMG.dng", "IMG.jpg", exposure=0.5)  # atomic write, ICC profile and EXIF

For a batch, load the weights and make the runner once and pass both to every call;
:func:`develop_file` is one step of a batch (skip, develop, a ``batch.FileResult`` instead of an
exception for a bad file), shared by both executors of :mod:`executors`.
With tiles (any ``tile_size`` but 0) no full-frame float32 array is held: the source conditions
tiles on demand and the sink renders each output tile straight into the preallocated
uint8/uint16 image (``tile_size=0`` runs the network on the whole frame at once).
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import adjust, batch, colour, defaults, encode, metadata, publish, render, white_balance
from .bayer import PackedBayerSource
from .errors import (CFAPhaseWarning, LensCorrectionSkipped, MicroISPError, MicroISPWarning, OutputError,
                     OutputExistsError, out_of_memory)
from .options import DevelopOptions, Development
from .raw import Mosaic, decode, read_thumbnail
from . import runtimes
from .runtimes.base import SegmentRunner
from .streaming import RowBands, StreamAborted, StreamedImage
from .vocabulary import bits_problem
from .weights import Conditioning, Weights, load_weights

Progress = Callable[[int, int], None]



def make_runner(weights: Weights, backend: str = defaults.BACKEND, model: str | Path | None = None,
                threads: int | None = defaults.THREADS) -> SegmentRunner:
    """The runtime that runs ``weights``' network: ``"openvino"`` (the default) and ``"tf"``
    (TensorFlow) build it from the weights; ``"tflite"`` (LiteRT) runs ``model``, a segmented
    ``microisp export --tflite`` file of the same model and conditioning as ``weights``."""
    return runtimes.make_runner(backend, weights.config, weights.params, model, threads,
                                weights.conditioning.to_dict(), weights.name)


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
                   attention: str = defaults.ATTENTION, progress: Progress | None = None,
                   look: render.Look = render.Look(), stream: StreamedImage | None = None) -> np.ndarray:
    """A decoded :class:`Mosaic` -> (H, W, 3) uint8/uint16 image in ``look.colorspace``, oriented
    (possibly a view)."""
    runner = runner if runner is not None else make_runner(weights)
    return run_pipeline(mosaic, weights.conditioning, runner, bits, tile_size, attention, progress,
                        look=look, stream=stream)


def run_pipeline(mosaic: Mosaic, conditioning: Conditioning, runner: SegmentRunner,
                 bits: int = defaults.BITS_ARRAY, tile_size: int = defaults.TILE_SIZE,
                 attention: str = defaults.ATTENTION, progress: Progress | None = None,
                 timings: dict[str, float] | None = None, look: render.Look = render.Look(),
                 stream: StreamedImage | None = None) -> np.ndarray:
    """:func:`develop_mosaic` for a runner and the input ``conditioning`` it expects.

    ``timings``, if given, gets the seconds spent conditioning and packing the input (``"pack"``)
    and rendering the output tiles (``"render"``) added to it; the rest is the network's.
    ``stream``: told of the (oriented) image and of each row as it becomes final (rows are
    final in order unless the orientation mirrors or turns rows: then all at the end).
    """
    dtype = render.dtype_for_bits(bits)
    source = PackedBayerSource.from_mosaic(mosaic, conditioning, runner.config.min_packed_size)
    top, left, height, width = source.crop
    in_order = stream is not None and mosaic.orientation in (0, 1)  # image rows are out's rows
    if in_order:  # streamed: only the rows of tiles not yet encoded are held
        out = image = RowBands((height, width, 3), dtype, mirror=mosaic.orientation == 1)
    else:
        out = np.empty((height, width, 3), dtype)
        image = render.orient(out, mosaic.orientation)
    matrix = mosaic.cam_to_srgb
    # white-balanced channels saturate at their gain; all of them are reliable up to the smallest
    clip_level = float(mosaic.wb.min()) if conditioning.white_balance else 1.0
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
        rows = out.band(y0 - top, y1 - top) if in_order else out[y0 - top:y1 - top]
        rows[:, x0 - left:x1 - left] = render.render_tile(tile, conditioning.output, matrix, bits, look,
                                                          clip_level)
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
    """``mosaic`` read with another CFA order (files whose CFA tag is wrong). Its white balance
    is decided after this (:func:`white_balance.apply`), grey world measured for the new order."""
    if cfa == mosaic.cfa:
        return mosaic
    return dataclasses.replace(mosaic, cfa=cfa, description=f"{mosaic.description}, read as {cfa}")


def develop(path: str | Path, weights: Weights | str | Path | None = None, *,
            runner: SegmentRunner | None = None, options: DevelopOptions | None = None,
            progress: Progress | None = None, **changes) -> np.ndarray:
    """Develop the RAW file (or sensor dump) at ``path`` into an (H, W, 3) image, oriented.

    ``weights``: a :class:`Weights`, a bundled name or a path (None: the default weights).
    ``runner``: a runtime made by :func:`make_runner` (made here when None; pass one for batches).
    ``options``: a :class:`DevelopOptions` (None: the defaults), with ``changes`` (its fields,
    e.g. ``bits=8, exposure=1.0``) applied; ``bits`` None means 16 here. ``progress(done,
    total)``: called as network tiles complete.
    Raises :class:`errors.InputError` for unreadable, unsupported or too large inputs and
    :class:`errors.OptionsError` for unusable options. Metadata that had to be replaced by a
    fallback is reported with :class:`errors.MicroISPWarning` warnings; nothing is printed.
    """
    return _develop(path, weights, runner, DevelopOptions.of(options, **changes), progress)[0]


def _develop(path: str | Path, weights: Weights | str | Path | None, runner: SegmentRunner | None,
             options: DevelopOptions, progress: Progress | None,
             stream: StreamedImage | None = None) -> tuple[np.ndarray, Development]:
    """:func:`develop`, also saying what was used; ``stream``: see :func:`run_pipeline` (not with
    ``thumbnail`` or ``size``, which change the image after the network)."""
    bits = options.bits or defaults.BITS_ARRAY
    if options.thumbnail:
        image, flip = read_thumbnail(path)
        image = render.orient(image, flip)
        if bits == 16:
            image = image.astype(np.uint16) * np.uint16(257)
        used = Development((), "embedded preview", (), "embedded preview", 0.0, "srgb", (0, 0))
    else:
        if not isinstance(weights, Weights):
            weights = load_weights(weights)
        with warnings.catch_warnings():
            if options.cfa is not None:  # --force-cfa: the tag's order is not used
                warnings.filterwarnings("ignore", category=CFAPhaseWarning)
            mosaic = decode(path, options.dump, options.max_megapixels)
        if options.cfa is not None:
            mosaic = with_cfa(mosaic, options.cfa)
        mosaic = white_balance.apply(mosaic, options.wb)
        width, height = mosaic.size[::-1] if mosaic.orientation & 4 else mosaic.size
        target = _target_size(options, width, height)
        if options.half_size or (target is not None and 2 * max(target) <= max(width, height)):
            mosaic = adjust.half_size(mosaic)
        ev = adjust.auto_exposure(mosaic) if options.exposure == "auto" else float(options.exposure)
        style = defaults.LOOKS[options.look]
        ev += style["exposure"]
        look = render.Look(gain=2.0 ** ev, colorspace=options.colorspace, highlights=options.highlights,
                           tone=options.look,
                           contrast=style["contrast"] if options.contrast is None else options.contrast,
                           saturation=style["saturation"] if options.saturation is None else options.saturation)
        image = develop_mosaic(mosaic, weights, runner, 16 if options.lens_correction else bits,
                               options.tile_size, options.attention, progress, look, stream)
        if options.lens_correction:
            image = _correct_lens(path, image, options.colorspace, bits)
        matrix = render.output_matrix(weights.conditioning.output, mosaic.cam_to_srgb, options.colorspace)
        used = Development(tuple(round(float(g), 6) for g in mosaic.wb), mosaic.wb_source,
                           tuple(tuple(round(float(v), 6) for v in row) for row in matrix),
                           mosaic.matrix_source, round(ev, 4), options.colorspace, (0, 0))
    if options.sharpen > 0:
        image = adjust.sharpen(image, options.sharpen)
    target = _target_size(options, image.shape[1], image.shape[0])
    if target is not None:
        image = adjust.resize(image, target, used.colorspace)
    elif _resizes(options) and not options.upscale and _target_size(
            options.replace(upscale=True), image.shape[1], image.shape[0]) is not None:
        warnings.warn(f"the photo is {image.shape[1]}x{image.shape[0]}, smaller than the size asked "
                      "for: kept at its size (--upscale enlarges it)", MicroISPWarning, stacklevel=2)
    return image, dataclasses.replace(used, size=(image.shape[1], image.shape[0]))


def _correct_lens(path: str | Path, image: np.ndarray, colorspace: str, bits: int) -> np.ndarray:
    """``--lens-correction`` of a 16-bit developed image (:mod:`lens`), returned at ``bits``; a
    file whose camera or lens lensfun does not know is left as it is, with one warning line."""
    from . import lens

    setting = lens.setting_from_exif(metadata.read(path).exif)
    try:
        image, _ = lens.correct(np.ascontiguousarray(image), setting, colorspace)
    except LensCorrectionSkipped as skipped:
        warnings.warn(f"lens correction skipped: {skipped}", LensCorrectionSkipped, stacklevel=3)
    if bits == 8:
        return np.rint(image.astype(np.float32) / np.float32(257)).astype(np.uint8)
    return image


def _resizes(options: DevelopOptions) -> bool:
    return options.size is not None or options.width is not None or options.height is not None


def _whole_image(options: DevelopOptions) -> bool:
    """Whether the image is changed as a whole after the network (resized, sharpened): then it
    cannot be encoded row by row as it is developed."""
    return _resizes(options) or options.sharpen > 0 or options.lens_correction


def _target_size(options: DevelopOptions, width: int, height: int) -> tuple[int, int] | None:
    """:func:`adjust.target_size` of a ``width`` x ``height`` photo for ``options``."""
    return adjust.target_size(width, height, options.size, options.width, options.height, options.upscale)


def develop_to_file(path: str | Path, output: str | Path, weights: Weights | str | Path | None = None,
                    *, runner: SegmentRunner | None = None, options: DevelopOptions | None = None,
                    overwrite: bool = False, progress: Progress | None = None, **changes) -> Path:
    """Develop ``path`` and write it to ``output`` (format from its extension), atomically, with
    the colour space's ICC profile and, unless ``strip_metadata``, the camera's EXIF and XMP
    (:mod:`metadata`). ``options`` and ``changes``: as :func:`develop`; ``bits`` None takes the
    format's default (PNG, JPEG and WebP 8, TIFF 16). Raises :class:`errors.OutputError` if
    ``output`` exists and not ``overwrite``, before any work."""
    _develop_to_file(path, output, weights, runner, DevelopOptions.of(options, **changes), overwrite,
                     progress)
    return Path(output)


def _develop_to_file(path, output, weights, runner, options: DevelopOptions, overwrite: bool,
                     progress: Progress | None) -> Development:
    output = Path(output)
    kind = encode.format_for(output)
    bits = options.bits if options.bits is not None else encode.default_bits(output)
    if problem := bits_problem(kind, bits):
        raise encode.OutputError(f"{output}: {problem} (got --bits {bits})")
    if kind == "jxl" and options.colorspace != "srgb" and not options.thumbnail:
        raise encode.OutputError(f"{output}: JPEG XL is written in sRGB only (the JPEG XL plugin "
                                 f"cannot embed the {options.colorspace} ICC profile); use .avif, "
                                 ".tif or .png for --colorspace " + options.colorspace)
    problem = publish.existing_output(output, overwrite)
    if problem is not None:
        raise OutputExistsError(problem)
    if publish.same_file(path, output):
        raise OutputError(f"{output} is the input file itself: refused (it would be lost)")
    options = options.replace(bits=bits)

    def write(image, colorspace: str, finish: Callable[[], None] | None = None) -> None:
        """The camera's metadata is read once the first rows are developed (the input has been
        decoded, so checked to be a readable regular file, by then)."""
        camera = None if options.strip_metadata else metadata.read(path)
        encode.write_image(output, image, quality=options.quality, overwrite=overwrite,
                           subsampling=options.subsampling, icc=colour.icc_profile(colorspace),
                           metadata=camera, finish=finish)

    if kind != "png" or options.thumbnail or _whole_image(options):
        image, used = _develop(path, weights, runner, options, progress)
        write(image, used.colorspace)
        return used
    # PNG: the encoder compresses rows in a thread as the network finishes them
    stream, failure = StreamedImage(), []
    cancelled, finished = threading.Event(), threading.Event()

    def still_wanted() -> None:  # the encoder's last check before the file is published
        if cancelled.is_set():
            raise StreamAborted

    def encoder() -> None:
        try:
            stream[0:1]  # nothing is created on disk before the network has made a first row
            write(stream, options.colorspace, still_wanted)
        except StreamAborted:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            failure.append(exc)
            stream.abort()
        finally:
            finished.set()

    threading.Thread(target=encoder, name="microisp-encode", daemon=True).start()
    used = None
    try:
        try:
            _, used = _develop(path, weights, runner, options, progress, stream)
        except StreamAborted:
            pass  # the encoder failed: its error is raised below
        finished.wait()  # Ctrl-C here (the encoder compressing or syncing the file) is caught below
    except BaseException:
        cancelled.set()  # the encoder removes its file rather than publish it
        stream.abort()
        _wait(finished)
        raise
    if failure:
        raise failure[0]
    return used


def _wait(finished: threading.Event) -> None:
    """Wait for ``finished``, also through Ctrl-C (re-raised once it is set): the encoder's
    cleanup must run before the caller's. An event, not ``Thread.join``: an interrupted join
    marks the thread as ended while it still runs (Python 3.11)."""
    interrupted: BaseException | None = None
    while not finished.is_set():
        try:
            finished.wait()
        except KeyboardInterrupt as exc:
            interrupted = interrupted or exc
    if interrupted is not None:
        raise interrupted


# --- one file of a batch ----------------------------------------------------------------------------
def develop_file(source: str | Path, output: str | Path, weights: Weights | None = None, *,
                 runner: SegmentRunner | None = None, options: DevelopOptions | None = None,
                 overwrite: bool = False, progress: Progress | None = None) -> batch.FileResult:
    """:func:`develop_to_file` as one step of a batch: never raises for a bad input or an
    unwritable output, but returns a ``"failed"`` :class:`batch.FileResult` naming the cause (one
    line); an existing ``output`` (also one that appears while the file is developed) is skipped
    unless ``overwrite``; running out of memory, in any form (:func:`errors.out_of_memory`: a
    native library's ``std::bad_alloc``, a lazy import that cannot be mapped), fails the file,
    not the batch. Errors that are not
    :class:`MicroISPError` or :class:`OSError` are bugs and propagate. Both executors (in
    process and every Dask task) run this same function (``weights`` and ``runner`` may be None for ``thumbnail``)."""
    source, output = Path(source), Path(output)
    skipped = batch.skip_result(source, output, overwrite)
    if skipped is not None:
        return skipped
    replacing = output.exists()
    started = time.perf_counter()
    failure = used = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            used = _develop_to_file(source, output, weights, runner, options or DevelopOptions(),
                                    overwrite, progress)
        except OutputExistsError:  # it did not exist above: it appeared while this file was developed
            return batch.FileResult(source, output, "skipped", str(publish.appeared(output)))
        except MicroISPError as exc:
            failure = str(exc).replace("\n", " ")
        except Exception as exc:  # noqa: BLE001 - out of memory in any form; the rest are bugs
            failure = out_of_memory(exc)
            if failure is None and isinstance(exc, OSError):  # the file it was about, when the error says
                failure = f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else f"{exc.strerror or exc}"
            if failure is None:
                raise
    notes = tuple((str(item.message).splitlines() or [""])[0] for item in caught
                  if item.category.__module__.startswith("microisp_cli"))
    if failure is not None:
        return batch.FileResult(source, output, "failed", failure, notes)
    return batch.FileResult(source, output, "done", warnings=notes,
                            seconds=time.perf_counter() - started, replaced=replacing, used=used)
