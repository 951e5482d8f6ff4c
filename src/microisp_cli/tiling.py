"""Running the network over a frame: tile plans and the exact two-pass attention scheme.

The network's attention blocks average over the whole image, so plain tiling is wrong. The exact
scheme (see ``docs/tiling.md``) runs the network one *segment* at a time over all tiles:

1. every tile of segment ``i`` is computed over a window of one fixed shape holding its core plus
   at least ``config.segment_radius(i)`` packed pixels of context; border windows are moved
   inwards, not clipped, so where context is missing the window edge is the frame edge and the
   SAME zero padding there is the whole-frame model's own (:func:`fixed_windows`);
2. the core of its output state is kept (in a disk-backed :class:`StateStore`, float32) and the
   core's stride-3 probe samples on the global grid (packed rows and columns divisible by 3) are
   written into a small global map in memory (1/9 of the frame);
3. the attention head runs once on that map, which is exactly what the whole-frame model samples;
4. the next segment reads the stored state with its halo; the last one hands RGB tiles to the sink.

``attention="tile"`` is the cheap approximation for single fixed-shape models: every tile window
runs the whole network on its own (its own attention), and overlapping windows are feather-blended.

Frames smaller than ``config.min_packed_size`` packed pixels on a side (79 for the published
layout) are reflect-padded at the bottom and right up to that size, and the output is cropped
back; see :func:`pad_to_minimum`. Every entry point here applies that rule.

Interfaces:
- ``source``: ``.shape`` -> (h, w) packed size; ``.read(y0, y1, x0, x1)`` -> float32
  (y1 - y0, x1 - x0, 4), the conditioned packed input (reads stay inside the frame).
- ``sink(y, x, rgb)``: receives float32 RGB (h, w, 3) for output pixels starting at full-resolution
  row ``y``, column ``x``. Every output pixel is delivered exactly once.
- ``progress(done, total)``: optional callback, called as tiles complete.

Any :class:`runtimes.base.SegmentRunner` works (OpenVINO, TensorFlow, LiteRT).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
from collections.abc import Callable
from typing import Protocol

import numpy as np

from . import defaults
from .model import ATTENTION_STRIDE, HEAD_SPAN, forward_segments
from .runtimes.base import SegmentRunner
from .state_store import StateStore
# the plans' public names are read through tiling too (the tests, library users)
from .tile_plans import (MIN_TILE_SIZE, WindowPlan, _fixed_window, feather_weights,  # noqa: F401
                         fixed_windows, packed_tile_size, plan_windows, split_axis, tile_size_for)
from .vocabulary import ATTENTION_MODES, choose

#: Overlap between neighbouring tile windows in ``attention="tile"`` mode, packed pixels per side;
#: the feather ramp spans twice this.
TILE_OVERLAP = 16




class PackedSource(Protocol):
    shape: tuple[int, int]

    def read(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray: ...


Sink = Callable[[int, int, np.ndarray], None]
Progress = Callable[[int, int], None]


class ArraySource:
    """A packed array (h, w, 4) float32 as a source."""

    def __init__(self, packed: np.ndarray):
        self.packed = np.asarray(packed, np.float32)
        self.shape = (int(self.packed.shape[0]), int(self.packed.shape[1]))

    def read(self, y0, y1, x0, x1):
        return self.packed[y0:y1, x0:x1]


# --- small frames -------------------------------------------------------------------------------
class PaddedSource:
    """``source`` reflect-padded at the bottom and right to at least ``minimum`` per side.

    The rule for frames the attention chain cannot take: mirror the packed frame about its last
    row / column (repeatedly if the frame is much smaller than ``minimum``; a 1-pixel side is
    replicated) and crop the output back to the frame. Top-left content keeps its coordinates.
    """

    def __init__(self, source: PackedSource, minimum: int):
        self.inner = source
        self.frame = tuple(int(s) for s in source.shape)
        self.shape = (max(self.frame[0], minimum), max(self.frame[1], minimum))
        self._padded: np.ndarray | None = None

    def read(self, y0, y1, x0, x1):
        if self._padded is None:  # one side is below ``minimum``: at most minimum x the other side
            h, w = self.frame
            data = self.inner.read(0, h, 0, w)
            pad = ((0, self.shape[0] - h), (0, self.shape[1] - w), (0, 0))
            self._padded = np.pad(np.asarray(data, np.float32), pad, mode="reflect")
        return self._padded[y0:y1, x0:x1]


def pad_to_minimum(source: PackedSource, minimum: int) -> PackedSource:
    """``source`` itself when both sides are >= ``minimum``, else a :class:`PaddedSource`."""
    h, w = source.shape
    if h < 1 or w < 1:
        raise ValueError(f"empty frame: packed size {h}x{w}")
    if h >= minimum and w >= minimum:
        return source
    return PaddedSource(source, minimum)


def _cropping_sink(sink: Sink, frame: tuple[int, int]) -> Sink:
    """A sink that drops output outside the (full-resolution) ``frame`` and forwards the rest."""
    fh, fw = 2 * frame[0], 2 * frame[1]

    def crop(y: int, x: int, rgb: np.ndarray) -> None:
        h, w = min(rgb.shape[0], fh - y), min(rgb.shape[1], fw - x)
        if h > 0 and w > 0:
            sink(y, x, rgb[:h, :w])

    return crop


# --- the pipeline -------------------------------------------------------------------------------
def run_tiled(runner: SegmentRunner, source: PackedSource, sink: Sink,
              tile_size: int | None = None, attention: str = defaults.ATTENTION,
              progress: Progress | None = None, *, state_dtype=np.float32,
              temp_dir: str | None = None) -> None:
    """Run the network over ``source`` and hand every output tile to ``sink``.

    ``tile_size``: tile side in output pixels (even, >= ``MIN_TILE_SIZE``), 0 for one
    whole-frame pass, or None for the network's default (``tile_plans.tile_size_for``). ``attention``: ``"exact"`` (global attention, equal to the whole-frame
    result) or ``"tile"`` (each tile its own attention, feather-blended; approximate).
    ``state_dtype``/``temp_dir``: how and where the exact mode keeps the state between attention
    points (float32 keeps the result within 1e-5 of the whole frame; see docs/tiling.md).
    """
    choose("attention", attention, ATTENTION_MODES)
    config = runner.config
    core = packed_tile_size(tile_size_for(config, tile_size))
    frame = tuple(int(s) for s in source.shape)
    padded = pad_to_minimum(source, config.min_packed_size)
    if padded is not source:
        sink = _cropping_sink(sink, frame)
    h, w = padded.shape
    if core == 0 or (core >= h and core >= w):
        _run_whole(runner, padded, sink, progress)
    elif attention == "exact":
        _run_exact(runner, padded, sink, core, progress, state_dtype, temp_dir)
    else:
        _run_tile_attention(runner, padded, sink, core, progress)


def _run_whole(runner: SegmentRunner, source: PackedSource, sink: Sink,
               progress: Progress | None) -> None:
    """The whole frame in one pass (also what one window runs in ``attention="tile"`` mode)."""
    h, w = source.shape
    x = np.ascontiguousarray(source.read(0, h, 0, w), np.float32)[None]
    sink(0, 0, _forward(runner, x)[0])
    if progress:
        progress(1, 1)


def _forward(runner: SegmentRunner, x: np.ndarray) -> np.ndarray:
    return forward_segments(runner.config, x, runner.segment,
                            lambda index, samples: runner.head(index, np.ascontiguousarray(samples)))


class _Probes:
    """The stride-3 probe samples of one attention point, and its head.

    The head's strided convolutions read non-overlapping blocks of ``HEAD_SPAN`` map rows, so a
    runner that sums its head over bands (``head_sum``/``head_mean``, the OpenVINO runner) is fed
    each block as soon as its rows are final, beside the network, and only the rows not yet fed
    are kept. Other runners get the whole map at the end.
    """

    def __init__(self, runner: SegmentRunner, index: int, shape: tuple[int, int], band_rows: int):
        s, config = ATTENTION_STRIDE, runner.config
        self.runner, self.index = runner, index
        self.rows = -(-shape[0] // s)
        self.incremental = runner.incremental_heads
        held = min(self.rows, HEAD_SPAN + band_rows // s + 2) if self.incremental else self.rows
        self.map = np.empty((held, -(-shape[1] // s), config.probe_channels), np.float32)
        self.first = 0  # global map row of self.map[0]
        self.sums: list = []

    def put(self, cy0: int, cy1: int, cx0: int, cx1: int, kept: np.ndarray) -> None:
        """The samples of a core's state (rows [cy0, cy1), columns [cx0, cx1) packed)."""
        s = ATTENTION_STRIDE
        fy, fx = -cy0 % s, -cx0 % s  # first global grid sample inside the core
        self.map[(cy0 + fy) // s - self.first:-(-cy1 // s) - self.first, (cx0 + fx) // s:-(-cx1 // s)] = \
            kept[fy::s, fx::s, :self.map.shape[2]]

    def final(self, cy1: int) -> None:
        """Every map row from packed rows below ``cy1`` is final: feed whole blocks to the head."""
        if not self.incremental:
            return
        ready = (-(-cy1 // ATTENTION_STRIDE) - self.first) // HEAD_SPAN * HEAD_SPAN
        if ready:
            self.sums.append(self.runner.head_sum(self.index, self.map[None, :ready]))
            left = self.map.shape[0] - ready
            self.map[:left] = self.map[ready:].copy()
            self.first += ready

    def attention(self) -> np.ndarray:
        if not self.incremental:
            return self.runner.head(self.index, self.map[None])
        return self.runner.head_mean(self.index, self.sums)


def _run_exact(runner: SegmentRunner, source: PackedSource, sink: Sink, core: int,
               progress: Progress | None, state_dtype, temp_dir: str | None) -> None:
    """The exact two-pass scheme over fixed-shape windows (:func:`plan_windows`), one row of tiles
    at a time (:meth:`_ExactPass.row`).

    One store holds the state, updated in place through a memory map of the rows a row of tiles
    needs. Windows read the old state, and each tile writes its core's new state once the next
    window (the only other one that overlaps it: cores are at least ``2 * halo + 2``) has been
    copied. The old values of the rows above the next row's cores, which this row overwrites, are
    kept aside first (a strip a few rows high). The probe samples go to :class:`_Probes`.
    """
    plan = plan_windows(runner.config, source.shape, core, state_dtype)
    n = plan.segments
    store = StateStore(source.shape, runner.config.state_channels, state_dtype, temp_dir) if n > 1 else None
    run = _ExactPass(runner, source, sink, plan, progress, store)
    att = None
    try:
        for index in range(n):
            run.probes = None if index == n - 1 else _Probes(runner, index, source.shape, plan.core_y + 1)
            strip = None  # old state of rows [wy0, cy0) of this row's windows
            for r in range(len(plan.rows)):
                strip = run.row(index, r, att, strip)
            if run.probes is not None:
                att = run.probes.attention()
    finally:
        run.close()


class _ExactPass:
    """One frame through the exact scheme: the state store, the two window buffers, the window
    in flight and the band of state mapped for the current row of tiles.

    The network runs a window (asynchronously where the runner can, else in a thread) while
    this thread prepares the next and stores the one before: both cores stay busy.
    """

    def __init__(self, runner: SegmentRunner, source: PackedSource, sink: Sink, plan: WindowPlan,
                 progress: Progress | None, store: StateStore | None):
        self.runner, self.source, self.sink, self.plan = runner, source, sink, plan
        self.progress, self.store = progress, store
        self.done = 0
        # state window buffers reused by every window, in turn (the window before may still be
        # running); a one-segment network has no state
        self.windows = [np.empty((1, *plan.size, runner.config.state_channels), np.float32)
                        for _ in range(2 if plan.segments > 1 else 0)]
        # the graphs of every segment get ready beside the network
        runner.prepare([(index, *plan.size) for index in range(plan.segments)])
        self.engine = None
        if runner.asynchronous:
            self.submit = runner.submit
        else:
            self.engine = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="microisp-network")
            self.submit = functools.partial(self.engine.submit, runner.segment)
        self.pending: tuple | None = None
        self.band: np.ndarray | None = None
        self.probes: _Probes | None = None

    def row(self, index: int, r: int, att: np.ndarray | None,
            strip: np.ndarray | None) -> np.ndarray | None:
        """Row ``r`` of tiles of segment ``index`` (``att``: its attention scales; ``strip``: the
        old state above this row's cores, from the row before). Returns the next row's strip."""
        last, middle = index == self.plan.segments - 1, 0 < index < self.plan.segments - 1
        rows = self.plan.rows
        (cy0, cy1), (wy0, wy1) = rows[r]
        # rows read (the old state, from cy0 where the strip holds the rows above) and written
        # (the cores); the first segment only writes, the last only reads
        top = wy0 if last else cy0
        self.band = self.store.band(top, cy1 if index == 0 else wy1) if self.store is not None else None
        above = 0 if strip is None else len(strip)
        strip_next = None
        if middle and r + 1 < len(rows):
            following = rows[r + 1][1][0]  # the next row's first window row
            assert following >= cy0, "cores shorter than 2 * halo + 2"
            strip_next = self.band[following - top:cy1 - top].copy()
        for (cx0, cx1), (wx0, wx1) in self.plan.cols:
            x = (np.ascontiguousarray(self.source.read(wy0, wy1, wx0, wx1), np.float32)[None]
                 if self.runner.reads_input(index) else None)
            state = None
            if index:
                state = self.windows[0]
                self.windows.reverse()
                if above:
                    np.copyto(state[0, :above], strip[:, wx0:wx1])
                np.copyto(state[0, above:], self.band[wy0 + above - top:wy1 - top, wx0:wx1])
            running = self.submit(index, x, state, att)
            if self.pending is not None:
                self._finish(*self.pending)
            self.pending = (running, index, cy0, cy1, cx0, cx1, cy0 - wy0, cx0 - wx0)
        self._finish(*self.pending)  # this row's band is released before the next is mapped
        self.pending = self.band = None
        if self.probes is not None:
            self.probes.final(cy1)
        return strip_next

    def _finish(self, running, index, cy0, cy1, cx0, cx1, oy, ox) -> None:
        """What a window's result becomes: the sink's RGB, or its core's state and probes."""
        out = running.result()[0]
        if index == self.plan.segments - 1:
            self.sink(2 * cy0, 2 * cx0, out[2 * oy:2 * (oy + cy1 - cy0), 2 * ox:2 * (ox + cx1 - cx0)])
        else:
            kept = out[oy:oy + cy1 - cy0, ox:ox + cx1 - cx0]
            self.band[:cy1 - cy0, cx0:cx1] = kept  # the band starts at row cy0 when it is written
            self.probes.put(cy0, cy1, cx0, cx1, kept)
        self.done += 1
        if self.progress:
            self.progress(self.done, self.plan.total)

    def close(self) -> None:
        """Stop the network thread (or wait for the window in flight: it reads the band), then
        release the band and the store."""
        if self.engine is not None:
            self.engine.shutdown(wait=True, cancel_futures=True)
        elif self.pending is not None:  # a failure: the window still running reads the band
            with contextlib.suppress(Exception):
                self.pending[0].result()
        self.band = None
        if self.store is not None:
            self.store.close()


def _run_tile_attention(runner: SegmentRunner, source: PackedSource, sink: Sink, core: int,
                        progress: Progress | None) -> None:
    """Approximate mode: every window runs the whole network; overlaps are feather-blended.

    Each core is grown by ``TILE_OVERLAP`` pixels (the blend region, clipped to the frame) and then
    by the network's whole receptive radius (context computed and discarded, so that only the
    attention, not the zero padding of the window edge, differs from the exact result). All
    windows have one shape (the largest core plus both margins; windows at the frame border are
    shifted inwards, not clipped), so a model compiled for one input size runs every window.
    Between two neighbours the blend ramps linearly across the ``2 * TILE_OVERLAP`` pixels both
    cover. Rows of tiles are blended into a band buffer, and finished rows are handed to the sink.
    """
    h, w = source.shape
    config = runner.config
    context = sum(config.segment_radius(i) for i in range(config.num_segments))
    rows = split_axis(h, core)
    cols = split_axis(w, core)
    smallest = min(b - a for a, b in rows + cols)
    m = min(TILE_OVERLAP, smallest // 2)  # the two ramps of one window must not overlap
    size_y = max(b - a for a, b in rows) + 2 * (m + context)
    size_x = max(b - a for a, b in cols) + 2 * (m + context)
    total, done = len(rows) * len(cols), 0
    carry = None  # output rows [2 * (y0 - m), 2 * (y0 + m)) blended so far by the band above
    for y0, y1 in rows:
        by0, by1 = max(0, y0 - m), min(h, y1 + m)
        band = np.zeros((2 * (by1 - by0), 2 * w, 3), np.float32)
        wy = feather_weights(2 * (by1 - by0), 2 * (y0 - by0), 2 * (by1 - y1))
        wy0, wy1 = _fixed_window(by0, by1, size_y, h)
        for x0, x1 in cols:
            bx0, bx1 = max(0, x0 - m), min(w, x1 + m)
            wx0, wx1 = _fixed_window(bx0, bx1, size_x, w)
            window = pad_to_minimum(_Window(source, wy0, wy1, wx0, wx1), config.min_packed_size)
            x = np.ascontiguousarray(window.read(0, window.shape[0], 0, window.shape[1]),
                                     np.float32)[None]
            oy, ox = 2 * (by0 - wy0), 2 * (bx0 - wx0)
            rgb = _forward(runner, x)[0, oy:oy + 2 * (by1 - by0), ox:ox + 2 * (bx1 - bx0)]
            wx = feather_weights(2 * (bx1 - bx0), 2 * (x0 - bx0), 2 * (bx1 - x1))
            band[:, 2 * bx0:2 * bx1] += rgb * wy[:, None, None] * wx[None, :, None]
            done += 1
            if progress:
                progress(done, total)
        if carry is not None:  # rows shared with the band above: 2 * m packed rows
            band[:carry.shape[0]] += carry
        end = band.shape[0] - 4 * (by1 - y1)
        sink(2 * by0, 0, band[:end])
        carry = band[end:].copy()


class _Window:
    """A rectangle of a source, as a source."""

    def __init__(self, source: PackedSource, y0: int, y1: int, x0: int, x1: int):
        self.source, self.y0, self.x0 = source, y0, x0
        self.shape = (y1 - y0, x1 - x0)

    def read(self, y0, y1, x0, x1):
        return self.source.read(self.y0 + y0, self.y0 + y1, self.x0 + x0, self.x0 + x1)


def run_array(runner: SegmentRunner, packed: np.ndarray, tile_size: int | None = None,
              attention: str = defaults.ATTENTION, progress: Progress | None = None,
              **options) -> np.ndarray:
    """Convenience: packed (h, w, 4) float32 -> RGB (2h, 2w, 3) float32."""
    h, w = packed.shape[:2]
    out = np.empty((2 * h, 2 * w, 3), np.float32)

    def sink(y, x, rgb):
        out[y:y + rgb.shape[0], x:x + rgb.shape[1]] = rgb

    run_tiled(runner, ArraySource(packed), sink, tile_size, attention, progress, **options)
    return out
