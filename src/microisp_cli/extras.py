"""Optional dependencies: a plain install develops photos; the rest comes with extras.

- ``tf``: TensorFlow and LiteRT: ``train``, ``eval``, ``export``, ``--backend tf``/``tflite``,
  the published TF1 checkpoint, ``microisp bench`` of those backends;
- ``dask``: ``develop --workers`` / ``--scheduler``;
- ``jxl``: JPEG XL output (``.jxl``: the ``pillow-jxl-plugin``);
- ``lens``: ``develop --lens-correction`` (``lensfunpy`` and the lensfun database).

From a clone (README), ``python3 -m pip install -e ".[test]"`` installs them all and the test tools;
a missing one is named with that command (:func:`install_hint`). The name ``microisp-cli`` is on
no package registry, so ``pip install 'microisp-cli[tf]'`` would fail.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingExtraError


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """``import module``, or a :class:`MissingExtraError` naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is not None and module.split(".")[0] != exc.name.split(".")[0]:
            raise  # the package is there but broken: keep the real cause
        raise MissingExtraError(f"{purpose} needs {module.split('.')[0]}, which is not installed: "
                                f"{install_hint(extra)}") from None


def install_hint(extra: str) -> str:
    """How to add ``extra``: the package is installed from a clone (README), not from a registry."""
    return f"python3 -m pip install -e '.[{extra}]' in the microisp clone"
