"""Developing one RAW file: decode, the stages after it (:data:`stages.STAGES`: white balance,
exposure, the tiled network with render on each tile, lens correction, sharpening, resizing),
encode.

The library entry points, usable without the CLI::

    from microisp_cli.develop import develop, develop_to_file, make_runner
    image = develop("IMG.dng")                          # (H, W, 3) uint16 sRGB, oriented
    develop_to_file("IMG.dng", "IMG.jpg", exposure=0.5)  # atomic write, ICC profile and EXIF

For a batch, load the weights and make the runner once and pass both to every call;
``batch_step.develop_file`` is one step of a batch (skip, develop, a ``FileResult`` instead of an
exception for a bad file), shared by both executors of :mod:`executors`.
With tiles (any ``tile_size`` but 0) the network stage holds no full-frame float32 array: the
source conditions tiles on demand and render makes each output tile straight into the
preallocated uint8/uint16 image, or into the rows a PNG encoder thread compresses as they become
final (``tile_size=0`` runs the network on the whole frame at once).
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import colour, defaults, encode, metadata, publish, render, runtimes, stages
from .errors import OutputError, OutputExistsError
from .options import DevelopOptions, Development
from .raw import Mosaic
from .runtimes.base import SegmentRunner
from .stages import Progress
from .streaming import StreamAborted, StreamedImage
from .vocabulary import bits_problem
from .weights import Conditioning, Weights, load_weights


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
                   options: DevelopOptions | None = None, *, progress: Progress | None = None,
                   stream: StreamedImage | None = None, **changes) -> np.ndarray:
    """A decoded :class:`Mosaic` developed as :func:`develop` develops a file after decoding it
    (:data:`stages.STAGES`; ``options`` and ``changes`` as there, ``bits`` None meaning 16) ->
    (H, W, 3) uint8/uint16 image in the options' colour space, oriented (possibly a view)."""
    runner = runner if runner is not None else make_runner(weights)
    return run_pipeline(mosaic, weights.conditioning, runner, DevelopOptions.of(options, **changes),
                        progress=progress, stream=stream)


def run_pipeline(mosaic: Mosaic, conditioning: Conditioning, runner: SegmentRunner,
                 options: DevelopOptions | None = None, *, progress: Progress | None = None,
                 timings: dict[str, float] | None = None, stream: StreamedImage | None = None) -> np.ndarray:
    """:func:`develop_mosaic` for a runner and the input ``conditioning`` it expects.

    ``timings``, if given, gets the seconds spent conditioning and packing the input (``"pack"``)
    and rendering the output tiles (``"render"``) added to it; the rest is the network's.
    ``stream``: told of the (oriented) image and of each row as it becomes final (rows are
    final in order unless the orientation mirrors or turns rows: then all at the end; only when
    :func:`stages.streams`).
    """
    context = stages.Context(conditioning, runner, progress, stream, timings)
    return stages.run_stages(stages.Frame(stages.MOSAIC, mosaic=mosaic), options or DevelopOptions(),
                             context).image


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
    """:func:`develop`, also saying what was used; ``stream``: see :func:`run_pipeline`."""
    if options.thumbnail:
        frame = stages.run_stages(stages.preview(path, options), options, stages.Context())
        used = Development((), "embedded preview", (), "embedded preview", 0.0, "srgb", (0, 0))
    else:
        if not isinstance(weights, Weights):
            weights = load_weights(weights)
        frame = stages.decoded(path, options)
        runner = runner if runner is not None else make_runner(weights)
        frame = stages.run_stages(frame, options, stages.Context(weights.conditioning, runner, progress, stream))
        used = _record(frame, weights.conditioning, options.colorspace)
    image = frame.image
    return image, dataclasses.replace(used, size=(image.shape[1], image.shape[0]))


def _record(frame: stages.Frame, conditioning: Conditioning, colorspace: str) -> Development:
    """What a develop used (the ``--json`` record), but the size: the white balance, the matrix
    render applied (:func:`render.output_matrix`), the exposure."""
    mosaic = frame.mosaic
    matrix = render.output_matrix(conditioning.output, mosaic.cam_to_srgb, colorspace)
    return Development(tuple(round(float(g), 6) for g in mosaic.wb), mosaic.wb_source,
                       tuple(tuple(round(float(v), 6) for v in row) for row in matrix),
                       mosaic.matrix_source, round(frame.ev, 4), colorspace, (0, 0))


def develop_to_file(path: str | Path, output: str | Path, weights: Weights | str | Path | None = None,
                    *, runner: SegmentRunner | None = None, options: DevelopOptions | None = None,
                    overwrite: bool = False, progress: Progress | None = None, **changes) -> Path:
    """Develop ``path`` and write it to ``output`` (format from its extension), atomically, with
    the colour space's ICC profile and, unless ``strip_metadata``, the camera's EXIF and XMP
    (:mod:`metadata`). ``options`` and ``changes``: as :func:`develop`; ``bits`` None takes the
    format's default (PNG, JPEG and WebP 8, TIFF 16). Raises :class:`errors.OutputError` if
    ``output`` exists and not ``overwrite``, before any work."""
    develop_into(path, output, weights, runner, DevelopOptions.of(options, **changes), overwrite, progress)
    return Path(output)


def develop_into(path: str | Path, output: str | Path, weights: Weights | str | Path | None,
                 runner: SegmentRunner | None, options: DevelopOptions, overwrite: bool = False,
                 progress: Progress | None = None) -> Development:
    """:func:`develop_to_file` with the options whole, saying what the develop used (the batch
    step's record, :func:`batch_step.develop_file`)."""
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

    if kind != "png" or options.thumbnail or not stages.streams(options):
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
