"""Smoke mode: ``MINIDIFF_SMOKE=1`` shrinks data and steps so every notebook runs in seconds (nbval).

The chapters write ``md.smoke.pick(full, small)``; ``md.smoke.enabled()`` says whether smoke mode is on.
"""

from __future__ import annotations

import os
from typing import TypeVar

V = TypeVar("V")


def enabled() -> bool:
    """True when the environment variable MINIDIFF_SMOKE is set to a true value (1, true, yes)."""
    return os.environ.get("MINIDIFF_SMOKE", "").strip().lower() in ("1", "true", "yes", "on")


def pick(full: V, small: V) -> V:
    """``small`` in smoke mode, ``full`` otherwise: ``steps = md.smoke.pick(3000, 50)``."""
    return small if enabled() else full
