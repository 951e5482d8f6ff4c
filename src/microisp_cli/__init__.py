"""microisp: a command-line RAW developer built on MicroISP (Ignatov et al., 2022).

The library is usable without the CLI; heavy dependencies (TensorFlow, LiteRT, rawpy) are
imported only when a function needs them.
"""

__version__ = "0.1.0"
