"""The fixed base demosaics a MicroISP network may refine (``ModelConfig.base``): bilinear and
Malvar-He-Cutler, as constant 3x3 convolutions in the packed domain.

The network adds its output to the base (``base + tanh * 0.58``); with ``base="mhc"`` and zeroed
output convolutions it *is* the Malvar-He-Cutler demosaic (``weights/mhc``).
"""

from __future__ import annotations

import numpy as np

from .bayer import SITES


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
