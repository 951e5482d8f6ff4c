"""The fixed base demosaics a MicroISP network may refine (``ModelConfig.base``): bilinear and
Malvar-He-Cutler as constant 3x3 convolutions in the packed domain, and the directional LMMSE
bases (``lmmse``, ``lmmse-ri``: :func:`lmmse_demosaic`, computed on sRGB-encoded values), written
once against an operations interface that numpy (:class:`NumpyOps`), TensorFlow
(``network.TensorFlowOps``) and OpenVINO provide; their reach and MACs are traced from that same
code (:func:`base_reach`, :func:`base_macs`).

The network adds its output to the base (``base + tanh * 0.58``); with ``base="mhc"`` and zeroed
output convolutions it *is* the Malvar-He-Cutler demosaic (``weights/mhc``).
"""

from __future__ import annotations

import functools

import numpy as np

from .bayer import SITES
from .colour import SRGB_BREAK, SRGB_GAMMA, SRGB_OFFSET, SRGB_SLOPE


# Full-resolution 5x5 filters, indexed [colour][site] for an RGGB cell, where sites are
# R (0,0), Gr (0,1), Gb (1,0), B (1,1) and colours R, G, B. Values from Malvar, He and Cutler,
# "High-quality linear interpolation for demosaicing of Bayer-patterned color images" (2004).
def _demosaic_filters(kind: str) -> dict[tuple[int, int], np.ndarray]:
    z = np.zeros((5, 5))
    ident = z.copy()
    ident[2, 2] = 1.0
    if kind == "mhc":
        g_at_rb = np.array([[0, 0, -1, 0, 0], [0, 0, 2, 0, 0], [-1, 2, 4, 2, -1],
                            [0, 0, 2, 0, 0], [0, 0, -1, 0, 0]]) / 8
        row = np.array([[0, 0, .5, 0, 0], [0, -1, 0, -1, 0], [-1, 4, 5, 4, -1],
                        [0, -1, 0, -1, 0], [0, 0, .5, 0, 0]]) / 8
        diag = np.array([[0, 0, -1.5, 0, 0], [0, 2, 0, 2, 0], [-1.5, 0, 6, 0, -1.5],
                         [0, 2, 0, 2, 0], [0, 0, -1.5, 0, 0]]) / 8
    else:  # bilinear
        g_at_rb = np.array([[0, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 1, 0, 1, 0],
                            [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]]) / 4
        row = np.array([[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, 0, 1, 0],
                        [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]) / 2
        diag = np.array([[0, 0, 0, 0, 0], [0, 1, 0, 1, 0], [0, 0, 0, 0, 0],
                         [0, 1, 0, 1, 0], [0, 0, 0, 0, 0]]) / 4
    col = row.T
    # (colour, site): R=0, G=1, B=2; sites 0=R, 1=Gr, 2=Gb, 3=B
    return {
        (0, 0): ident, (0, 1): row, (0, 2): col, (0, 3): diag,
        (1, 0): g_at_rb, (1, 1): ident, (1, 2): ident, (1, 3): g_at_rb,
        (2, 0): diag, (2, 1): col, (2, 2): row, (2, 3): ident,
    }


def base_kernel(kind: str) -> np.ndarray:
    """The fixed demosaic as a packed-domain conv kernel, HWIO (3, 3, 4, 12) float32.

    Input channels are the packed RGGB sites (R, Gr, Gb, B); output channel ``4 * c + s`` is
    colour ``c`` at site ``s``, ready for a depth-to-space by 2 per colour.
    """
    kernel = np.zeros((3, 3, len(SITES), 3 * len(SITES)))
    for (colour, site), taps in _demosaic_filters(kind).items():
        sy, sx = divmod(site, 2)
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                weight = taps[dy + 2, dx + 2]
                if weight == 0.0:
                    continue
                y, x = sy + dy, sx + dx
                src = 2 * (y % 2) + (x % 2)
                kernel[y // 2 + 1, x // 2 + 1, src, 4 * colour + site] += weight
    return kernel.astype(np.float32)


# --- the directional LMMSE base (``base="lmmse"``) ----------------------------------------------
# Green first, then colour differences, all in the sRGB-curve domain (demosaicing there, as
# RawTherapee's LMMSE does, weights errors the way the sRGB output shows them): Zhang and Wu's
# directional LMMSE estimate of green (IEEE TIP 2005) along rows and columns, fused by their
# error variances; red and blue from colour differences, diagonally then horizontally/vertically,
# weighted by inverse squared gradients. Written once against the small set of operations
# :func:`lmmse_demosaic` lists, which each runtime (TensorFlow, OpenVINO, numpy) provides. A
# runtime may hold each full-resolution map as its four packed sites at half resolution
# (TensorFlow and OpenVINO do, with :func:`packed_kernel`: 4-channel convolutions run about twice
# as fast as 1-channel ones, and no mosaic op is needed); numpy keeps full resolution, the
# reference the others are tested against. Every step is a
# convolution with a constant kernel or an elementwise NNAPI 1.2 operation, so the base tiles
# exactly (its reach is :func:`base_reach`) and exports to TFLite.

LMMSE_SMOOTHING = (9, 2.0)   # taps and sigma of the Gaussian that smooths each colour difference
LMMSE_WINDOW = 9             # samples of the window its local mean and variances are taken over
_TINY = 1e-6                 # keeps the variances away from 0 (encoded values are 0..1)
_GRADIENT_FLOOR = 1e-3
RESIDUAL_WINDOW = 7          # side of the guided filter's windows (base "lmmse-ri")
RESIDUAL_EPS = 1e-5          # its regularisation of a (encoded values are 0..1)
#: The bases computed in the sRGB-curve domain by :func:`lmmse_demosaic`, and its ``residual``.
ENCODED_BASES = {"lmmse": False, "lmmse-ri": True}


def _gaussian(taps: int, sigma: float) -> np.ndarray:
    r = np.arange(taps) - taps // 2
    g = np.exp(-r * r / (2 * sigma * sigma))
    return g / g.sum()


def packed_kernel(kernels) -> np.ndarray:
    """Full-resolution kernels (2-D, odd sides, all one shape) as one packed-domain HWIO kernel
    (kh', kw', 4, 4 * len(kernels)): the same correlation on a map held as its packed sites
    (R, Gr, Gb, B), output channel ``4 * k + s`` is kernel ``k`` at site ``s``. Zero padding
    carries over exactly (frames have even sides)."""
    ry, rx = kernels[0].shape[0] // 2, kernels[0].shape[1] // 2
    py, px = (ry + 1) // 2, (rx + 1) // 2
    out = np.zeros((2 * py + 1, 2 * px + 1, len(SITES), len(SITES) * len(kernels)), np.float32)
    for k, kernel in enumerate(kernels):
        for (i, j), weight in np.ndenumerate(kernel):
            if weight == 0.0:
                continue
            for site in range(len(SITES)):
                sy, sx = divmod(site, 2)
                y, x = sy + i - ry, sx + j - rx
                out[py + y // 2, px + x // 2, 2 * (y % 2) + x % 2, len(SITES) * k + site] += weight
    return out


def packed_channel_sum(stacked: int) -> np.ndarray:
    """The 1x1 HWIO kernel (1, 1, 4 * stacked, 4) that sums :func:`packed_kernel`'s ``stacked``
    outputs per site."""
    return np.tile(np.eye(len(SITES), dtype=np.float32), (stacked, 1))[None, None]


def curve_encode(o, t):
    """The sRGB curve as min/max/pow (no select), extended below 0 by its linear segment; the
    same numbers as :func:`colour.srgb_encode` on 0..1."""
    high = o.pow(o.maximum(t, SRGB_BREAK), 1 / SRGB_GAMMA) * (1 + SRGB_OFFSET) - SRGB_OFFSET
    return o.minimum(t * SRGB_SLOPE, high)


def curve_decode(o, t):
    """The inverse of :func:`curve_encode` (linear below the break, the power above)."""
    top = o.maximum(t, SRGB_BREAK * SRGB_SLOPE)
    high = o.pow((top + SRGB_OFFSET) * (1 / (1 + SRGB_OFFSET)), SRGB_GAMMA)
    return t * (1 / SRGB_SLOPE) + o.maximum(high - top * (1 / SRGB_SLOPE), 0.0)


def lmmse_demosaic(o, x, residual: bool = False):
    """Packed RGGB input ``x`` (already :func:`curve_encode`'d) -> full-resolution R, G, B maps.

    ``residual`` (base ``"lmmse-ri"``): the colours by residual interpolation from the LMMSE
    green (:func:`_residual_colours`) instead of colour differences.

    ``o`` provides ``mosaic(x)`` (the packed sites as one full-resolution map), ``site_mask(x,
    pattern)`` (1 at the packed sites marked in ``pattern``, else 0), ``conv(t, kernel)`` (2-D
    correlation, zero padded, odd kernel sides), ``conv_stack(t, kernels)`` (one channel per
    kernel, all of one shape) and ``channel_sum``, ``abs``, ``maximum``, ``minimum``, ``pow``,
    and tensors that take +, -, *, / with each other and with floats.
    """
    m = o.mosaic(x)
    green = o.site_mask(x, (0, 1, 1, 0))
    row = lambda k: np.asarray(k, np.float32)[None, :]  # noqa: E731
    col = lambda k: np.asarray(k, np.float32)[:, None]  # noqa: E731
    # the other colour along a line, Laplacian-corrected (Hamilton-Adams): G at R/B, R/B at G
    half = [-0.25, 0.5, 0.5, 0.5, -0.25]
    taps, sigma = LMMSE_SMOOTHING
    smooth, mean = _gaussian(taps, sigma), np.full(LMMSE_WINDOW, 1 / LMMSE_WINDOW)
    # the window's variance is taken as mean((s_q - s_p)^2) - (s_p - mu)^2: differences first,
    # so float32 does not cancel (mean(s^2) - mu^2 loses the small variances of flat areas)
    middle = LMMSE_WINDOW // 2
    others = [q for q in range(LMMSE_WINDOW) if q != middle]
    steps = np.zeros((len(others), LMMSE_WINDOW))
    steps[range(len(others)), others], steps[:, middle] = 1.0, -1.0   # s_q - s_p, one row per q
    sign = 1.0 - green * 2.0                        # +1 at R/B sites, -1 at G sites
    estimates = []
    for line in (row, col):
        diff = (o.conv(m, line(half)) - m) * sign   # G - C along the line
        s = o.conv(diff, line(smooth))
        mu = o.conv(s, line(mean))
        deltas = o.conv_stack(s, [line(k) for k in steps])
        spread = o.channel_sum(deltas * deltas)
        offset = s - mu
        signal = o.maximum(spread * (1 / LMMSE_WINDOW) - offset * offset, 0.0) + _TINY
        noise = o.conv((diff - s) * (diff - s), line(mean)) + _TINY
        estimates.append((mu + signal / (signal + noise) * (diff - mu), signal * noise / (signal + noise)))
    (d_row, e_row), (d_col, e_col) = estimates
    g = m + (d_row * e_col + d_col * e_row) / (e_row + e_col) * (1.0 - green)
    # horizontal/vertical weights from gradients summed over a 3x5 window
    w_line = []
    for line, box in ((row, np.ones((3, 5))), (col, np.ones((5, 3)))):
        grad = o.abs(o.conv(m, line([1, 0, -1]))) + o.abs(o.conv(m, line([-1, 0, 2, 0, -1])))
        total = o.conv(grad, box.astype(np.float32)) + _GRADIENT_FLOOR
        w_line.append(1.0 / (total * total))
    w_row, w_col = w_line
    if residual:
        return _residual_colours(o, x, m, g, green, w_row, w_col)
    cross = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.float32)
    channels = {}
    for colour, pattern, opposite in (("r", (1, 0, 0, 0), (0, 0, 0, 1)), ("b", (0, 0, 0, 1), (1, 0, 0, 0))):
        own, other = o.site_mask(x, pattern), o.site_mask(x, opposite)
        d = (m - g) * own                            # C - G where C was sampled
        # at the opposite colour's sites: the two diagonals, weighted by their gradients
        diagonals = []
        for ends in (np.array([[0, 0, 1], [0, 0, 0], [1, 0, 0]]), np.array([[1, 0, 0], [0, 0, 0], [0, 0, 1]])):
            step = ends * np.array([[1], [0], [-1]])     # one end minus the other
            centre = np.diag([0, 2, 0]) - ends             # green's second difference
            grad = o.abs(o.conv(d, step.astype(np.float32))) + o.abs(o.conv(g, centre.astype(np.float32)))
            total = o.conv(grad * other, cross) + _GRADIENT_FLOOR
            diagonals.append((o.conv(d, (ends * 0.5).astype(np.float32)), 1.0 / (total * total)))
        (e1, w1), (e2, w2) = diagonals
        d = d + (e1 * w1 + e2 * w2) / (w1 + w2) * other
        # at green sites: the four neighbours, weighted like green's rows and columns
        across = (o.conv(d, row([0.5, 0, 0.5])) * w_row + o.conv(d, col([0.5, 0, 0.5])) * w_col) / (w_row + w_col)
        channels[colour] = g + d + across * green
    return channels["r"], g, channels["b"]


_BILINEAR = np.array([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]], np.float32)


def _residual_colours(o, x, m, g, green, w_row, w_col):
    """Red, green and blue by residual interpolation (Kiku, Monno, Tanaka and Okutomi, ICIP 2013)
    from the LMMSE green ``g``: each colour's tentative map is a guided-filter fit to its samples
    (:func:`_fit`), and the samples' residuals from it are interpolated bilinearly. Once: red and
    blue guided by green; then green at red and blue sites again, guided by those (its residuals
    interpolated along rows and columns with ``w_row``/``w_col``); then red and blue from that
    green (one refinement, as Monno et al.'s iterative residual interpolation; a second added
    0.03 dB). Box filters are separable: a row, then a column."""
    taps = np.ones(RESIDUAL_WINDOW, np.float32)
    box = lambda t: o.conv(o.conv(t, taps[None, :]), taps[:, None])  # noqa: E731
    frame = m * 0.0 + 1.0                             # masks as maps, so that they pad with zeros
    cover = box(frame)
    sites = [o.site_mask(x, pattern) * frame for pattern in ((1, 0, 0, 0), (0, 0, 0, 1))]
    counts = [box(s) for s in sites]
    greens = green * frame
    green_count = box(greens)

    def red_blue(guide):
        fits = (_fit(o, box, m, guide, own, n, cover) for own, n in zip(sites, counts))
        return [fit + o.conv((m - fit) * own, _BILINEAR) for fit, own in zip(fits, sites)]

    r, b = red_blue(g)
    refined = g * green
    row, col = np.float32([[0.5, 0, 0.5]]), np.float32([[0.5], [0], [0.5]])
    for guide, own in zip((r, b), sites):
        fit = _fit(o, box, m, guide, greens, green_count, cover)
        residual = (m - fit) * green
        across = (o.conv(residual, row) * w_row + o.conv(residual, col) * w_col) / (w_row + w_col)
        refined = refined + (fit + across) * own
    r, b = red_blue(refined)
    return r, refined, b


def _fit(o, box, target, guide, samples, count, cover):
    """The guided filter of residual interpolation: in every box window, ``target ~ a * guide +
    b`` fitted by least squares over the window's ``samples`` (a 0/1 map; ``count`` their box
    sums), then a and b averaged over the windows that cover each pixel (``cover``: the box of
    ones). Values are centred on 0.5 first: the same fit, and smaller squares lose less in float32."""
    g, c = guide - 0.5, target - 0.5
    mean_g, mean_c = box(g * samples) / count, box(c * samples) / count
    var = o.maximum(box(g * g * samples) / count - mean_g * mean_g, 0.0)
    a = (box(g * c * samples) / count - mean_g * mean_c) / (var + RESIDUAL_EPS)
    b = mean_c - a * mean_g
    return (box(a) * g + box(b)) / cover + 0.5


class NumpyOps:
    """:func:`lmmse_demosaic`'s operations on numpy arrays: packed (N, h, w, 4) in, maps
    (N, 2h, 2w) out."""

    abs, maximum, minimum, pow = staticmethod(np.abs), staticmethod(np.maximum), \
        staticmethod(np.minimum), staticmethod(np.power)

    @staticmethod
    def mosaic(x):
        n, h, w, _ = x.shape
        return x.reshape(n, h, w, 2, 2).transpose(0, 1, 3, 2, 4).reshape(n, 2 * h, 2 * w)

    @classmethod
    def site_mask(cls, x, pattern):
        return cls.mosaic(np.broadcast_to(np.asarray(pattern, x.dtype), x.shape))

    @classmethod
    def conv_stack(cls, t, kernels):
        return np.stack([cls.conv(t, k) for k in kernels], -1)

    @staticmethod
    def channel_sum(t):
        return t.sum(-1)

    @staticmethod
    def conv(t, kernel):
        ry, rx = kernel.shape[0] // 2, kernel.shape[1] // 2
        padded = np.pad(t, ((0, 0), (ry, ry), (rx, rx)))
        out = np.zeros_like(t)
        for (i, j), k in np.ndenumerate(kernel):
            if k:
                out += t.dtype.type(k) * padded[:, i:i + t.shape[1], j:j + t.shape[2]]
        return out


class _Reach:
    """A stand-in tensor: how far (full-resolution pixels, rows and columns) its values reach."""

    def __init__(self, ry: int = 0, rx: int = 0):
        self.ry, self.rx = ry, rx

    def join(self, other) -> _Reach:
        if not isinstance(other, _Reach):
            return self
        return _Reach(max(self.ry, other.ry), max(self.rx, other.rx))

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = join


class _ReachOps:
    """Runs :func:`lmmse_demosaic` on :class:`_Reach` stand-ins, counting convolution taps."""

    def __init__(self):
        self.taps = 0

    def conv(self, t, kernel):
        self.taps += int(np.count_nonzero(kernel))
        return _Reach(t.ry + kernel.shape[0] // 2, t.rx + kernel.shape[1] // 2)

    def conv_stack(self, t, kernels):
        for k in kernels[1:]:
            self.conv(t, k)   # counted; all kernels have one shape, so one reach
        return self.conv(t, kernels[0])

    def channel_sum(self, t):
        return t

    def mosaic(self, x):
        return _Reach()

    def site_mask(self, x, pattern):
        return _Reach()

    def abs(self, t):
        return t

    def maximum(self, a, b):
        return a.join(b)

    minimum = maximum

    def pow(self, t, exponent):
        return t


@functools.cache
def _traced(kind: str) -> tuple[int, int]:
    """(reach in full-resolution pixels, convolution taps per full-resolution pixel) of a base."""
    if kind in ENCODED_BASES:
        ops = _ReachOps()
        reach = _Reach()
        for t in lmmse_demosaic(ops, reach, ENCODED_BASES[kind]):
            reach = reach.join(t)
        return max(reach.ry, reach.rx), ops.taps
    return 2, 9 * len(SITES) * 3 * len(SITES) // 4  # the 5x5 filters: a packed 3x3, 4 -> 12


def base_reach(kind: str) -> int:
    """Packed pixels of context a base needs on each side for an exact output."""
    return 0 if kind == "none" else -(-_traced(kind)[0] // 2)


def base_macs(kind: str) -> int:
    """Multiply-accumulates of a base's convolutions per full-resolution output pixel."""
    return 0 if kind == "none" else _traced(kind)[1]
