"""Every default value, in one place: read by the library and the CLI alike."""

from __future__ import annotations

#: Weights used when none are named: a manifest name in the bundled ``weights/`` folder.
WEIGHTS = "default"

#: Output tile side in full-resolution pixels for the exact tiled pipeline (0: whole frame).
TILE_SIZE = 1024

#: How attention is computed when tiling: "exact" (global, two-pass) or "tile" (per tile).
ATTENTION = "exact"

#: Output bit depth when the format allows a choice (PNG); TIFF defaults to 16.
BITS_PNG = 8
BITS_TIFF = 16

#: JPEG quality.
JPEG_QUALITY = 92

#: Output format when the output is a directory.
OUTPUT_EXTENSION = ".png"

#: Backend that runs the network: "tf" (TensorFlow) or "tflite" (LiteRT).
BACKEND = "tf"

#: Threads for the backend (None: the runtime's default).
THREADS = None
