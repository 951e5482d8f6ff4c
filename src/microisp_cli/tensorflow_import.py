"""The one way microisp imports TensorFlow: lazily, with its start-up log lines kept off the terminal.

Every module that needs TensorFlow calls :func:`import_tensorflow` inside the function that needs
it, so importing microisp never loads TensorFlow, and a plain install (no ``[tf]`` extra) gets one
line naming the extra instead of a traceback.
"""

from __future__ import annotations

import os
import sys
import tempfile

from .extras import require


def import_tensorflow():
    """Import TensorFlow without its start-up log lines on the terminal.

    TensorFlow's C++ code prints absl and oneDNN notices on file descriptor 2 while it loads,
    whatever ``TF_CPP_MIN_LOG_LEVEL`` says; they go to a temporary file instead, shown only if the
    import fails.
    """
    if sys.modules.get("tensorflow") is not None:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            tensorflow = require("tensorflow", "tf", "train, eval, export and --backend tf")
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return tensorflow
