"""Input validation shared by the public functions: errors that name the argument and the bad value.

A private module of check helpers (its functions are package-internal, not part of the reader's API).
Every public math function checks its inputs on entry; the samplers and losses call those same
public functions, so there is one copy of each equation. The checks are cheap: the range check of
t reads its values on the host only for CPU tensors; on a GPU it is a device-side assert, so a check
inside a loop (every sampler step, an ``ExactEps`` model, a Langevin score) never stalls the GPU.
"""

from __future__ import annotations

import math
import numbers
import reprlib
from collections.abc import Iterable

import numpy as np
import torch

_short = reprlib.Repr()
_short.maxstring, _short.maxother, _short.maxlist = 60, 60, 6


def check_choice(name: str, value: str, valid: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``valid``; otherwise raise a ValueError listing them."""
    valid = tuple(valid)
    if not isinstance(value, str) or value not in valid:
        raise ValueError(f"unknown {name} {_short.repr(value)}; valid names are: {', '.join(map(repr, valid))}")
    return value


def check_float_tensor(name: str, x: torch.Tensor) -> torch.Tensor:
    """Raise a TypeError unless ``x`` is a floating-point tensor."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__} {_short.repr(x)}")
    if not x.is_floating_point():
        hint = f"; convert it first, e.g. {name}.float()" if name.isidentifier() else ""
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}{hint}")
    return x


def check_batched(name: str, x: torch.Tensor) -> int:
    """Return the batch size of ``x`` (B, ...); raise a ValueError for a 0-d tensor."""
    if x.dim() == 0:
        raise ValueError(f"{name} must have a batch dimension, shape (B, ...), got shape ()")
    return int(x.shape[0])


def check_same_shape(name: str, y: torch.Tensor, ref_name: str, ref: torch.Tensor) -> torch.Tensor:
    """Raise a ValueError unless ``y`` has the shape of ``ref``."""
    if y.shape != ref.shape:
        raise ValueError(f"{name} must have the shape of {ref_name}, {tuple(ref.shape)}, got {tuple(y.shape)}")
    return y


def _interval(ge, gt, le, lt) -> str:
    lo, hi = (ge, "[") if ge is not None else (gt, "("), (le, "]") if le is not None else (lt, ")")
    if lo[0] is not None and hi[0] is not None:
        return f"in {lo[1]}{lo[0]}, {hi[0]}{hi[1]}"
    if lo[0] is not None:
        return f"{'>=' if ge is not None else '>'} {lo[0]}"
    return f"{'<=' if le is not None else '<'} {hi[0]}"


def _scalar(value):
    """A 0-dim real tensor as its Python number (read once, on entry); anything else unchanged."""
    if isinstance(value, torch.Tensor) and value.dim() == 0 and not value.is_complex():
        return value.item()
    return value


def check_real(name: str, value: float, *, ge: float | None = None, gt: float | None = None,
               le: float | None = None, lt: float | None = None) -> float:
    """Return ``value`` as a float if it is a finite real number within the given bounds.

    Raises a TypeError for a non-number and a ValueError, e.g. ``eta must be >= 0, got eta = -1``,
    for a value out of range (NaN and ±inf included).
    """
    value = _scalar(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {_short.repr(value)}")
    v = float(value)
    ok = math.isfinite(v) and (ge is None or v >= ge) and (gt is None or v > gt) \
        and (le is None or v <= le) and (lt is None or v < lt)
    if not ok:
        bounds = "" if (ge, gt, le, lt) == (None,) * 4 else _interval(ge, gt, le, lt)
        what = bounds if math.isfinite(v) else f"a finite number {bounds}".rstrip()
        raise ValueError(f"{name} must be {what}, got {name} = {value!r}")
    return v


def check_int(name: str, value: int, *, ge: int | None = None, le: int | None = None) -> int:
    """Return ``value`` if it is an int within [ge, le]; a TypeError or ValueError naming it otherwise."""
    value = _scalar(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {_short.repr(value)}")
    if (ge is not None and value < ge) or (le is not None and value > le):
        raise ValueError(f"{name} must be {_interval(ge, None, le, None)}, got {name} = {value}")
    return int(value)


def check_timesteps(t: torch.Tensor | int, T: int, batch: int | None = None, *, x_name: str = "x",
                    device: torch.device | str | None = None, name: str = "t", lo: int = 1) -> torch.Tensor:
    """Validate integer timesteps ``t`` in [lo, T] (the paper's t; lo = 1 by default) as a long tensor.

    ``t``: an int, or an integer tensor of shape () or (B,). ``lo = 0`` admits t = 0, the data x_0,
    where that is meaningful (``q_sample``, ``extract``). With ``batch`` (the batch size of the
    tensor named ``x_name``), a single timestep is expanded to (batch,) and a (B,) t must have
    B = batch, so the result is always (batch,). ``name``: the argument's name in the messages.
    On the CPU the range check names the bad value; on an accelerator it is a device-side assert
    (``torch._assert_async``), so it never makes the host wait for the device.
    """
    if isinstance(t, bool):
        raise TypeError(f"{name} must be an int or an integer tensor, got bool {t!r}")
    if isinstance(t, numbers.Integral):
        t = torch.tensor(int(t))
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be an int or an integer tensor, got {type(t).__name__} {_short.repr(t)}")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer timesteps, got dtype {t.dtype}; "
                        f"convert it first, e.g. {name}.long()")
    if t.dim() > 1:
        raise ValueError(f"{name} must have shape () or (B,), got shape {tuple(t.shape)}")
    if t.dtype != torch.long:
        t = t.long()  # also makes aminmax work for uint16/32/64
    if t.numel() > 0:
        if t.device.type == "cpu":
            t_min, t_max = torch.stack(torch.aminmax(t)).tolist()
            if t_min < lo or t_max > T:
                raise ValueError(f"{name} must lie in [{lo}, T] = [{lo}, {T}] (the paper's t), "
                                 f"got {name} = {t_min if t_min < lo else t_max}")
        else:
            # On an accelerator, reading t on the host would synchronize at every call (every sampler
            # step of an ExactEps model); the device-side assert fails the same bad input without that.
            torch._assert_async(((t >= lo) & (t <= T)).all())
    if batch is not None:
        if t.dim() == 0 or t.shape[0] == 1:
            t = t.reshape(1).expand(batch)
        elif t.shape[0] != batch:
            raise ValueError(
                f"{name} has batch size {t.shape[0]} but {x_name} has batch size {batch}; "
                f"they must match (or {name} must be a single timestep)"
            )
    return t if device is None else t.to(device)


def check_steps(name: str, K: int, T: int) -> int:
    """Return ``K`` if it is an int in [1, T] (a number of steps or levels out of T)."""
    if isinstance(K, bool) or not isinstance(K, numbers.Integral) or not 1 <= K <= T:
        raise ValueError(f"{name} must be an int in [1, T] = [1, {T}], got {name} = {K!r}")
    return int(K)


def check_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Return ``shape`` as a tuple if it is a non-empty sequence of positive ints (B, ...)."""
    ok = isinstance(shape, (tuple, list, torch.Size)) and len(shape) >= 1 and all(
        isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1 for n in shape)
    if not ok:
        raise ValueError(f"shape must be a tuple of positive ints (B, ...), got shape = {shape!r}")
    return tuple(int(n) for n in shape)


def check_noise(noise: torch.Tensor | None, like: torch.Tensor, like_name: str = "x0",
                generator: torch.Generator | None = None) -> torch.Tensor:
    """``noise`` after checking it is a float tensor shaped like ``like``, or fresh N(0, I) noise if None."""
    if noise is None:
        return torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)
    check_float_tensor("noise", noise)
    return check_same_shape("noise", noise, like_name, like)


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 if its dtype is a lower-precision float (bf16, fp16 under autocast), else unchanged.

    Everything after the network output is computed in at least float32 (issue 15): the schedule's
    float64 values are cast to the working dtype, and bf16 would put 7 % errors into a learned variance.
    """
    return x.float() if x.is_floating_point() and torch.finfo(x.dtype).bits < 32 else x


def check_point_matrix(name: str, x) -> torch.Tensor:
    """A point cloud or feature matrix (N, D), N >= 2, D >= 1, of finite reals: returned as float64 on the CPU.

    Accepts a torch.Tensor or a numpy array (the metrics take either).
    """
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array of shape (N, D), got {type(x).__name__}")
    if x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"{name} must hold real numbers, got dtype {x.dtype}")
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape (N, D), got {tuple(x.shape)}")
    if x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"{name} must have at least 2 points and 1 dimension, got shape {tuple(x.shape)}")
    x = x.detach().to("cpu", torch.float64)
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x
