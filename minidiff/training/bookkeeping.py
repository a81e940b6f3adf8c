"""The run's bookkeeping around the training step: the finite guard, log.csv, the clock and the pace.

None of it is the math of Algorithm 1. :class:`~minidiff.training.trainer.Trainer` keeps one of
each and calls them between steps: :class:`FiniteGuard` folds every step into a flag that stays on
the device (no host synchronization) and is read at log steps; :class:`RunLog` writes log.csv;
:class:`RunClock` counts the training seconds of the whole run across resumes; :func:`pace_message`
is the early estimate of the time left. Chapter "Training on images".
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import torch

LOG_FIELDS = ("step", "loss", "grad_norm", "lr", "images_per_s", "elapsed_s")


class NonFiniteError(RuntimeError):
    """The loss or the gradient became NaN or infinite; the run stopped without saving."""


class FiniteGuard:
    """Whether every step so far was finite, and the (step, loss, grad norm) of the first bad one, on the device."""

    def __init__(self, device: torch.device) -> None:
        self.finite = torch.ones((), dtype=torch.bool, device=device)  # all steps so far finite (on device)
        self.first_bad = torch.zeros(3, device=device)  # (step, loss, grad norm) of the first bad step

    def update(self, step: int, loss: torch.Tensor, grad_norm: torch.Tensor, check_grad: bool) -> None:
        """Fold this step into the on-device finite flag, keeping the first bad step's numbers (no host sync).

        ``check_grad`` is False where an infinite gradient is not an error: under fp16 it is an overflow
        the GradScaler skips, so only the loss counts there; without clipping the gradient norm is not
        computed, and a bad gradient shows in the next step's loss.
        """
        ok = torch.isfinite(loss)
        if check_grad:
            ok = ok & torch.isfinite(grad_norm)
        first = self.finite & ~ok
        now = torch.stack([torch.full_like(loss, step, dtype=torch.float32), loss.float(), grad_norm.float()])
        self.first_bad = torch.where(first, now, self.first_bad)
        self.finite = self.finite & ok

    def check(self, *, out: Path, lr: float, amp_dtype: torch.dtype | None, grad_clip: float) -> None:
        """Raise :class:`NonFiniteError` if any step so far was non-finite (reads the device flag: one sync)."""
        if bool(self.finite):
            return
        step, loss, grad_norm = self.first_bad.tolist()
        amp = {None: "off", torch.bfloat16: "bf16", torch.float16: "fp16"}[amp_dtype]
        raise NonFiniteError(
            f"non-finite training signal at step {int(step)} (loss = {loss:.4g}, gradient norm = "
            f"{grad_norm:.4g}); stopped without saving, so the last good checkpoint in {out} is "
            f"untouched. Likely causes: a learning rate too high (lr = {lr}; try a smaller one or a "
            f"longer warm-up), mixed precision (amp = {amp}; try --amp bf16 or --amp off), or too little "
            f"gradient clipping (grad_clip = {grad_clip}).")


class RunLog:
    """log.csv opened for writing; rows past the resumed ``step`` (a crash after the checkpoint) are dropped."""

    def __init__(self, path: Path, step: int) -> None:
        rows = []
        if path.exists():
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if r.get("step", "").isdigit() and int(r["step"]) <= step]
        self.file = open(path, "w", newline="")  # noqa: SIM115 (closed by close())
        self.writer = csv.DictWriter(self.file, fieldnames=LOG_FIELDS)
        self.writer.writeheader()
        self.writer.writerows({k: r.get(k, "") for k in LOG_FIELDS} for r in rows)

    def write(self, row: dict[str, object]) -> None:
        """Append one row (the :data:`LOG_FIELDS`) and flush it to disk."""
        self.writer.writerow(row)
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class RunClock:
    """Training seconds of the whole run, across resumes: those of earlier fits plus the running one."""

    def __init__(self, before: float = 0.0) -> None:
        self.before, self.start = before, None

    def begin(self) -> None:
        self.start = time.perf_counter()

    def end(self) -> float:
        """Stop the running fit's clock; returns its seconds, now counted in :attr:`before`."""
        seconds = time.perf_counter() - self.start
        self.before, self.start = self.before + seconds, None
        return seconds

    def elapsed(self) -> float:
        running = time.perf_counter() - self.start if self.start is not None else 0.0
        return self.before + running


def pace_message(per_step: float, steps_left: int, device: torch.device, preset: str) -> str:
    """The s/step, the projected time for the remaining steps and, for a GPU preset on a CPU, a hint."""
    from ..nets.presets import get_preset

    hint = ""
    if get_preset(preset).hardware == "gpu" and device.type == "cpu":
        hint = f"; preset {preset!r} is sized for a GPU: on a CPU, --preset cpu trains in about 30 minutes"
    return (f"minidiff: {per_step:.3g} s/step on {device}: about {_duration(steps_left * per_step)} for the "
            f"remaining {steps_left} steps{hint}")


def _duration(seconds: float) -> str:
    """'42 s', '12 min', '3.4 h' or '5.6 days'."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


__all__ = ["LOG_FIELDS", "FiniteGuard", "NonFiniteError", "RunClock", "RunLog", "pace_message"]
