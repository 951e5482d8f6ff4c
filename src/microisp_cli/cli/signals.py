"""SIGTERM and SIGHUP end a command like Ctrl-C: :func:`signals_as_interrupt` raises
:class:`Interrupted` (a ``KeyboardInterrupt``) so the same cleanup runs (a file being written is
removed, a Dask batch cancelled), and the command exits with 128 + the signal number.

The CLI's: signal handlers belong to the program, not to a library that may run inside another
(the library cleans up on ``KeyboardInterrupt``, whatever raised it).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class Interrupted(KeyboardInterrupt):
    """A signal (SIGTERM, SIGHUP) received during a batch, raised like Ctrl-C's KeyboardInterrupt
    so the same cleanup runs; ``exit_code`` is 128 + the signal number (143 for SIGTERM, 129 for
    SIGHUP)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.exit_code = 128 + signum


#: The signals that end a batch like Ctrl-C: SIGTERM (kill, a service manager), SIGHUP (the
#: terminal closed, an SSH connection dropped).
INTERRUPTING_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextlib.contextmanager
def signals_as_interrupt() -> Iterator[None]:
    """Within the block, :data:`INTERRUPTING_SIGNALS` raise :class:`Interrupted` (in the main
    thread; elsewhere, and where signals cannot be set, nothing changes)."""
    def handler(signum, frame):
        raise Interrupted(signum)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum in INTERRUPTING_SIGNALS}
    try:
        yield
    finally:
        for signum, action in previous.items():
            signal.signal(signum, action)
