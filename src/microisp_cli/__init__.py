"""microisp: a command-line RAW developer built on MicroISP (Ignatov et al., 2022).

The library is usable without the CLI; heavy dependencies (TensorFlow, LiteRT, rawpy) are
imported only when a function needs them, so the public names below load on first use:

- ``develop(path, ...) -> numpy array`` and ``develop_to_file(path, output, ...)``
- ``load_weights(name_or_path)`` and ``save_weights(weights, path)``
- ``run_tiled(runner, source, sink, ...)``: the exact tiled pipeline over any runner
- ``export_tflite(weights, path, ...)``
"""

from importlib import import_module
from importlib import metadata as _package_metadata

try:  # the one place the version is read: the installed package's metadata (pyproject.toml)
    __version__ = _package_metadata.version("microisp-cli")
except _package_metadata.PackageNotFoundError:  # run from a source tree that is not installed
    __version__ = "0+unknown"

_API = {
    "develop": "develop", "develop_to_file": "develop",
    "load_weights": "weights", "save_weights": "weights",
    "run_tiled": "tiling",
    "export_tflite": "export",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        return getattr(import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
