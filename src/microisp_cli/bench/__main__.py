"""``python -m microisp_cli.bench SPEC RESULT [SPAWNED_AT]``: the measured process of one
configuration (:func:`measure.worker`); ``python -m microisp_cli.bench --libraw-develop RAW
OUTPUT``: LibRaw's develop of one file as a process of its own (:func:`backends.libraw_develop`)."""

import sys

from .backends import libraw_develop
from .measure import worker

if __name__ == "__main__":
    if sys.argv[1:2] == ["--libraw-develop"]:
        libraw_develop(*sys.argv[2:4])
        sys.exit(0)
    sys.exit(worker(sys.argv[1:]))
