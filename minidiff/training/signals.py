"""A run that ends with a checkpoint on Ctrl-C or SIGTERM (pre-emption), and stops at once on a second signal.

:func:`install_stop_handlers` routes the first SIGINT or SIGTERM to a callback of the trainer, which
finishes the current step, saves and returns; :func:`restore_handlers` puts the previous handlers
back. Chapter "Training on images".
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

# Signals that end a run with a checkpoint at the step reached: Ctrl-C, and the SIGTERM that SLURM,
# Colab and torchrun send before they kill a process.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def install_stop_handlers(request_stop: Callable[[int], bool]) -> dict[int, Any]:
    """On SIGINT or SIGTERM call ``request_stop(signum)``; when it returns False (a stop was already
    requested) this second signal stops at once, without a checkpoint.

    Main thread only (Python delivers signals there); a signal that is ignored (SIG_IGN) stays
    ignored. Returns the previous handlers, for :func:`restore_handlers`.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum, frame):
        if request_stop(signum):
            return
        print(f"minidiff: second {signal.Signals(signum).name}: stopping now without a new checkpoint "
              "(the last one written stays intact)", file=sys.stderr, flush=True)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    previous = {}
    for sig in STOP_SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            previous[sig] = signal.signal(sig, handler)
    return previous


def restore_handlers(previous: dict[int, Any]) -> None:
    """Put back the handlers :func:`install_stop_handlers` replaced."""
    for sig, old in previous.items():
        signal.signal(sig, old if old is not None else signal.SIG_DFL)


__all__ = ["STOP_SIGNALS", "install_stop_handlers", "restore_handlers"]
