"""The develop after decoding as an ordered list of stages: :data:`STAGES`, the pipe order as data
(darktable's pipe order; each stage declared like a vkdt module: its parameters and the kind of
data on its connectors).

A :class:`Stage` names the :class:`options.DevelopOptions` fields it reads, the kind of data it
takes and gives (:data:`KINDS`: the mosaic, the network's RGB, the finished pixels) and when it
runs; each stage takes what the one before gives (``tests/test_stages.py`` checks the list).
:func:`run_stages` runs the list on a :class:`Frame`: a decoded mosaic (:func:`decoded`) from the
first stage, the file's embedded preview (:func:`preview`, pixels already) from the first stage
that takes pixels.

The network stage runs tile by tile, and the pointwise stages after it (``per_tile``: render) run
on each tile as it comes out of the network: with tiles no full-frame float32 image is held, and
the rows of the image can be encoded as they become final (:mod:`streaming`). A stage that takes
the finished pixels works on the image as a whole; when one runs, the image is encoded after it
(:func:`streams`). A new step (a look, a denoiser, a crop) is a function and one entry in
:data:`STAGES`; a pointwise one goes after the network, a whole-image one at the end.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import adjust, defaults, metadata, render, white_balance
from .bayer import PackedBayerSource
from .errors import CFAPhaseWarning, LensCorrectionSkipped, MicroISPWarning
from .options import DevelopOptions
from .raw import Mosaic, decode, read_thumbnail
from .runtimes.base import SegmentRunner
from .streaming import RowBands, StreamedImage
from .weights import Conditioning

Progress = Callable[[int, int], None]

#: The kinds of data between stages (a stage's ``takes`` and ``gives``).
MOSAIC, NETWORK_RGB, PIXELS = "mosaic", "network rgb", "pixels"
KINDS = {
    MOSAIC: "a raw.Mosaic: (H, W) uint16 Bayer samples, linear, with its levels, white balance and matrix",
    NETWORK_RGB: "the network's (h, w, 3) float32 tiles: white-balanced camera RGB, linear (weights "
                 "with 'linear' output), or sRGB the weights drew ('srgb')",
    PIXELS: "the finished image, (H, W, 3) uint8/uint16 encoded in the output colour space, oriented",
}


@dataclasses.dataclass(frozen=True)
class Frame:
    """What passes from stage to stage: the ``mosaic`` (kept after the network: the record reads
    its white balance and matrix), the finished ``image`` and its ``colorspace`` once there are
    pixels, the exposure ``ev`` (the exposure stage's, for render) and the input's ``path``
    (lens correction reads its EXIF; None for a mosaic developed without its file)."""

    kind: str
    mosaic: Mosaic | None = None
    image: np.ndarray | None = None
    colorspace: str = defaults.COLORSPACE
    ev: float = 0.0
    path: Path | None = None


@dataclasses.dataclass(frozen=True)
class Context:
    """What the stages use besides the frame and the options: the network (the input
    ``conditioning`` its weights expect, the ``runner``), the caller's ``progress(done, total)``,
    ``stream`` (the image told row by row to an encoder thread) and ``timings`` (seconds spent
    packing the input, ``"pack"``, and rendering the tiles, ``"render"``, added to it);
    ``pointwise``: the per-tile stages that run inside the network's sink (set by :func:`run_stages`)."""

    conditioning: Conditioning | None = None
    runner: SegmentRunner | None = None
    progress: Progress | None = None
    stream: StreamedImage | None = None
    timings: dict[str, float] | None = None
    pointwise: tuple[Stage, ...] = ()


TileStep = Callable[[np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True)
class Stage:
    """One step of the develop. ``reads``: the :class:`DevelopOptions` fields it reads; ``takes``
    and ``gives``: kinds of :data:`KINDS`; ``runs(options)``: whether it runs. Either ``apply(frame,
    options, context) -> frame`` (the whole frame) or ``per_tile(frame, options, context)``, which
    returns the function of one network tile that the network's sink runs (a pointwise step).
    ``needs_16_bits``: it takes 16-bit pixels (render makes them so) and gives the options' bits."""

    name: str
    reads: tuple[str, ...]
    takes: str
    gives: str
    runs: Callable[[DevelopOptions], bool]
    apply: Callable[[Frame, DevelopOptions, Context], Frame] | None = None
    per_tile: Callable[[Frame, DevelopOptions, Context], TileStep] | None = None
    needs_16_bits: bool = False


def _always(options: DevelopOptions) -> bool:
    return True


def _resizes(options: DevelopOptions) -> bool:
    return options.size is not None or options.width is not None or options.height is not None


def _target_size(options: DevelopOptions, width: int, height: int) -> tuple[int, int] | None:
    """:func:`adjust.target_size` of a ``width`` x ``height`` photo for ``options``."""
    return adjust.target_size(width, height, options.size, options.width, options.height, options.upscale)


# --- on the mosaic ------------------------------------------------------------------------------
def with_cfa(mosaic: Mosaic, cfa: str) -> Mosaic:
    """``mosaic`` read with another CFA order (files whose CFA tag is wrong). Its white balance
    is decided after this (:func:`white_balance.apply`), grey world measured for the new order."""
    if cfa == mosaic.cfa:
        return mosaic
    return dataclasses.replace(mosaic, cfa=cfa, description=f"{mosaic.description}, read as {cfa}")


def _force_cfa(frame: Frame, options: DevelopOptions, context: Context) -> Frame:
    return dataclasses.replace(frame, mosaic=with_cfa(frame.mosaic, options.cfa))


def _white_balance(frame: Frame, options: DevelopOptions, context: Context) -> Frame:
    return dataclasses.replace(frame, mosaic=white_balance.apply(frame.mosaic, options.wb))


def _half_size(frame: Frame, options: DevelopOptions, context: Context) -> Frame:
    """A 2x2-binned mosaic for ``half_size``, or when the size asked for is at most half the frame."""
    mosaic = frame.mosaic
    width, height = mosaic.size[::-1] if mosaic.orientation & 4 else mosaic.size
    target = _target_size(options, width, height)
    if options.half_size or (target is not None and 2 * max(target) <= max(width, height)):
        return dataclasses.replace(frame, mosaic=adjust.half_size(mosaic))
    return frame


def _exposure(frame: Frame, options: DevelopOptions, context: Context) -> Frame:
    """The EV render applies: the options' (measured for ``"auto"``) and the look's own."""
    ev = adjust.auto_exposure(frame.mosaic) if options.exposure == "auto" else float(options.exposure)
    return dataclasses.replace(frame, ev=ev + defaults.LOOKS[options.look]["exposure"])


# --- the network, and render on each of its tiles -----------------------------------------------
def render_bits(options: DevelopOptions) -> int:
    """The bit depth render quantises to: 16 when a stage that runs needs it, else the options'."""
    if any(stage.needs_16_bits and stage.runs(options) for stage in STAGES):
        return 16
    return options.bits or defaults.BITS_ARRAY


def _render(frame: Frame, options: DevelopOptions, context: Context) -> TileStep:
    """:func:`render.render_tile` with the look the options and the exposure ask for; white-balanced
    channels saturate at their gain, so every channel is reliable up to the smallest gain."""
    style = defaults.LOOKS[options.look]
    look = render.Look(gain=2.0 ** frame.ev, colorspace=options.colorspace, highlights=options.highlights,
                       tone=options.look,
                       contrast=style["contrast"] if options.contrast is None else options.contrast,
                       saturation=style["saturation"] if options.saturation is None else options.saturation)
    output, matrix, bits = context.conditioning.output, frame.mosaic.cam_to_srgb, render_bits(options)
    clip_level = float(frame.mosaic.wb.min()) if context.conditioning.white_balance else 1.0
    return lambda rgb: render.render_tile(rgb, output, matrix, bits, look, clip_level)


class _Sink:
    """The network's output tiles, cropped to the visible area (``crop``: top, left, height, width
    of it in the network's output) and through ``step`` (the pointwise stages), into ``out``; with
    ``stream`` (``out`` is then :class:`RowBands`), each row told as it becomes final."""

    def __init__(self, out, crop: tuple[int, int, int, int], step: TileStep,
                 stream: StreamedImage | None):
        self.out, self.crop, self.step, self.stream = out, crop, step, stream
        self.filled = np.zeros(crop[2], np.int64) if stream is not None else None
        self.final = 0

    def __call__(self, y: int, x: int, rgb: np.ndarray) -> None:
        top, left, height, width = self.crop
        y0, x0 = max(y, top), max(x, left)
        y1, x1 = min(y + rgb.shape[0], top + height), min(x + rgb.shape[1], left + width)
        if y0 >= y1 or x0 >= x1:
            return
        tile = rgb[y0 - y:y1 - y, x0 - x:x1 - x]
        rows = self.out.band(y0 - top, y1 - top) if self.stream is not None else self.out[y0 - top:y1 - top]
        rows[:, x0 - left:x1 - left] = self.step(tile)
        if self.stream is not None:
            self.filled[y0 - top:y1 - top] += x1 - x0
            while self.final < height and self.filled[self.final] == width:
                self.final += 1
            self.stream.ready(self.final)


class _TimedSource:
    """A packed source whose reads add their seconds to ``timings["pack"]``."""

    def __init__(self, source: PackedBayerSource, timings: dict[str, float]):
        self.source, self.shape, self.timings = source, source.shape, timings
        timings.setdefault("pack", 0.0)

    def read(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        start = time.perf_counter()
        try:
            return self.source.read(y0, y1, x0, x1)
        finally:
            self.timings["pack"] += time.perf_counter() - start


def _timed_sink(sink: _Sink, timings: dict[str, float]) -> Callable[[int, int, np.ndarray], None]:
    timings.setdefault("render", 0.0)

    def timed(y: int, x: int, rgb: np.ndarray) -> None:
        start = time.perf_counter()
        try:
            sink(y, x, rgb)
        finally:
            timings["render"] += time.perf_counter() - start

    return timed


def _network(frame: Frame, options: DevelopOptions, context: Context) -> Frame:
    """The tiled network on the conditioned, packed mosaic, its tiles through the pointwise stages
    into the image, oriented (a view; streamed rows are final in order unless the orientation
    mirrors or turns rows: then all at the end)."""
    from .tiling import run_tiled

    mosaic, stream = frame.mosaic, context.stream
    runner = context.runner
    source = PackedBayerSource.from_mosaic(mosaic, context.conditioning, runner.config.min_packed_size)
    _, _, height, width = source.crop
    dtype = render.dtype_for_bits(render_bits(options))
    in_order = stream is not None and mosaic.orientation in (0, 1)  # image rows are out's rows
    if in_order:  # streamed: only the rows of tiles not yet encoded are held
        out = image = RowBands((height, width, 3), dtype, mirror=mosaic.orientation == 1)
    else:
        out = np.empty((height, width, 3), dtype)
        image = render.orient(out, mosaic.orientation)
    steps = [stage.per_tile(frame, options, context) for stage in context.pointwise]
    step = steps[0] if len(steps) == 1 else lambda tile: _through(steps, tile)
    sink = _Sink(out, source.crop, step, stream if in_order else None)
    if stream is not None:
        stream.start(image)
    if context.timings is not None:
        source, sink = _TimedSource(source, context.timings), _timed_sink(sink, context.timings)
    run_tiled(runner, source, sink, options.tile_size, options.attention, context.progress)
    if stream is not None:
        stream.ready(image.shape[0])
    return dataclasses.replace(frame, kind=PIXELS, image=image, colorspace=options.colorspace)


def _through(steps: list[TileStep], tile: np.ndarray) -> np.ndarray:
    for step in steps:
        tile = step(tile)
    return tile


# --- on the finished image ----------------------------------------------------------------------
def _correct_lens(frame: Frame, options: DevelopOptions, context: Context) -> Frame:
    """``--lens-correction`` of the 16-bit image (:mod:`lens`), returned at the options' bits; a
    file whose camera or lens lensfun does not know is left as it is, with one warning line."""
    from . import lens

    if frame.path is None:
        raise ValueError("lens correction reads the lens from the RAW file's EXIF: develop the file, "
                         "not a decoded mosaic")
    image = frame.image
    setting = lens.setting_from_exif(metadata.read(frame.path).exif)
    try:
        image, _ = lens.correct(np.ascontiguousarray(image), setting, frame.colorspace)
    except LensCorrectionSkipped as skipped:
        warnings.warn(f"lens correction skipped: {skipped}", LensCorrectionSkipped, stacklevel=2)
    if (options.bits or defaults.BITS_ARRAY) == 8:
        image = np.rint(image.astype(np.float32) / np.float32(257)).astype(np.uint8)
    return dataclasses.replace(frame, image=image)


def _sharpen(frame: Frame, options: DevelopOptions, context: Context) -> Frame:
    return dataclasses.replace(frame, image=adjust.sharpen(frame.image, options.sharpen))


def _resize(frame: Frame, options: DevelopOptions, context: Context) -> Frame:
    """The size asked for, resampled in linear light; a photo smaller than that is kept at its
    size (with a warning) unless ``upscale``."""
    image = frame.image
    target = _target_size(options, image.shape[1], image.shape[0])
    if target is not None:
        return dataclasses.replace(frame, image=adjust.resize(image, target, frame.colorspace))
    if not options.upscale and _target_size(options.replace(upscale=True), *image.shape[1::-1]) is not None:
        warnings.warn(f"the photo is {image.shape[1]}x{image.shape[0]}, smaller than the size asked "
                      "for: kept at its size (--upscale enlarges it)", MicroISPWarning, stacklevel=2)
    return frame


#: The develop after decoding, in order.
STAGES: tuple[Stage, ...] = (
    Stage("force cfa", ("cfa",), MOSAIC, MOSAIC, lambda o: o.cfa is not None, apply=_force_cfa),
    Stage("white balance", ("wb",), MOSAIC, MOSAIC, _always, apply=_white_balance),
    Stage("half size", ("half_size", "size", "width", "height", "upscale"), MOSAIC, MOSAIC,
          lambda o: o.half_size or _resizes(o), apply=_half_size),
    Stage("exposure", ("exposure", "look"), MOSAIC, MOSAIC, _always, apply=_exposure),
    Stage("network", ("tile_size", "attention"), MOSAIC, NETWORK_RGB, _always, apply=_network),
    Stage("render", ("highlights", "look", "contrast", "saturation", "colorspace", "bits"), NETWORK_RGB,
          PIXELS, _always, per_tile=_render),
    Stage("lens correction", ("lens_correction", "bits"), PIXELS, PIXELS,
          lambda o: o.lens_correction and not o.thumbnail, apply=_correct_lens, needs_16_bits=True),
    Stage("sharpen", ("sharpen",), PIXELS, PIXELS, lambda o: o.sharpen > 0, apply=_sharpen),
    Stage("resize", ("size", "width", "height", "upscale"), PIXELS, PIXELS, _resizes, apply=_resize),
)


def stages_for(options: DevelopOptions, kind: str = MOSAIC) -> list[Stage]:
    """The stages that run for ``options`` on a frame of ``kind``, in order: from the first stage
    that takes that kind, those whose ``runs`` says so."""
    first = next(i for i, stage in enumerate(STAGES) if stage.takes == kind)
    return [stage for stage in STAGES[first:] if stage.runs(options)]


def streams(options: DevelopOptions) -> bool:
    """Whether the image is final as the network makes it, row by row: no stage that runs takes
    the finished pixels as a whole (resize, sharpen, lens correction); pointwise ones run per tile."""
    return not any(stage.takes == PIXELS and stage.per_tile is None for stage in stages_for(options))


def run_stages(frame: Frame, options: DevelopOptions, context: Context) -> Frame:
    """``frame`` through the stages that run for ``options`` (:func:`stages_for`); the pointwise
    ones run inside the network stage, on each of its tiles."""
    todo = stages_for(options, frame.kind)
    context = dataclasses.replace(context, pointwise=tuple(s for s in todo if s.per_tile is not None))
    for stage in todo:
        if stage.per_tile is None:
            frame = stage.apply(frame, options, context)
    return frame


# --- where a frame comes from -------------------------------------------------------------------
def decoded(path: str | Path, options: DevelopOptions) -> Frame:
    """The file at ``path`` decoded (:func:`raw.decode`; with ``--force-cfa`` the file's doubtful
    CFA order is not mentioned: it is not used)."""
    with warnings.catch_warnings():
        if options.cfa is not None:
            warnings.filterwarnings("ignore", category=CFAPhaseWarning)
        mosaic = decode(path, options.dump, options.max_megapixels)
    return Frame(MOSAIC, mosaic=mosaic, path=Path(path))


def preview(path: str | Path, options: DevelopOptions) -> Frame:
    """The file's embedded preview as pixels (sRGB, oriented; 16-bit unless ``bits`` is 8)."""
    image, flip = read_thumbnail(path)
    image = render.orient(image, flip)
    if (options.bits or defaults.BITS_ARRAY) == 16:
        image = image.astype(np.uint16) * np.uint16(257)
    return Frame(PIXELS, image=image, colorspace="srgb", path=Path(path))
