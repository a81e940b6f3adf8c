"""Fast defaults on CUDA (issue 15, item 8): each a named :class:`TrainConfig` option, off on the CPU.

None of these changes what a step computes beyond floating-point rounding; they change how fast it runs.
Left at None ("auto"), each is on for a CUDA device and off elsewhere, so a CPU run is unchanged:

- ``compile``: :func:`torch.compile` of the training loss. With ``compile_scope="loss"`` (the default)
  the whole function from x_0, t, ε to the batch mean of L_simple (channels_last, autocast, q_sample,
  the network, Eq. 14) is one graph, and its backward one more, so the element-wise work around the
  network (GroupNorm, SiLU, dropout, casts, the loss) fuses into few kernels; ``"network"`` compiles
  the network alone. t and ε are drawn outside, in eager mode, from the trainer's generator, so the
  random streams, the checkpoints (the un-compiled module's ``state_dict``), the EMA and resume are
  those of an eager run.
- ``cudnn_benchmark``: ``torch.backends.cudnn.benchmark = True``: cuDNN times its convolution
  algorithms for each new input shape once and keeps the fastest (the shapes of a training run never
  change after the first step).
- ``tf32_matmul``: ``torch.set_float32_matmul_precision("high")``: the float32 matmuls left outside
  autocast (and all of them with ``amp="off"``) run on TF32 tensor cores (Ampere and newer).
- ``ddp_bucket_view``: DDP's ``gradient_as_bucket_view=True``: gradients are views into DDP's
  all-reduce buckets, which saves one copy of the gradients per step and their memory.

``grad_clip = 0`` does no clipping work at all (no unscale, no gradient norm), whatever the device.
The two process-wide switches are set around each training step and restored after it
(:func:`backend_settings`), so that a trainer leaves the rest of the process as it found it.

Not yet measured on a GPU here: ``bench/trainer_options.py`` times each option off against on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .config import TrainConfig

COMPILE_SCOPES = ("loss", "network")
COMPILE_BACKENDS = ("inductor", "cudagraphs", "aot_eager", "eager")  # the last two: for debugging, no speed-up
# The auto options of TrainConfig: None means on for CUDA, off elsewhere.
AUTO_FIELDS = ("compile", "cudnn_benchmark", "tf32_matmul", "ddp_bucket_view")


@dataclass(frozen=True)
class SpeedOptions:
    """The options of a run as resolved for its device (no None left)."""

    compile: bool
    compile_scope: str
    compile_backend: str
    cudnn_benchmark: bool
    tf32_matmul: bool
    ddp_bucket_view: bool

    def describe(self) -> str:
        """'compile (loss, inductor), cudnn.benchmark, TF32 matmul, DDP bucket view', or 'none'."""
        on = []
        if self.compile:
            on.append(f"compile ({self.compile_scope}, {self.compile_backend})")
        on += [name for name, flag in (("cudnn.benchmark", self.cudnn_benchmark), ("TF32 matmul", self.tf32_matmul),
                                       ("DDP bucket view", self.ddp_bucket_view)) if flag]
        return ", ".join(on) or "none"


def resolve_speed(config: TrainConfig, device: torch.device) -> SpeedOptions:
    """The speed options of ``config`` on ``device``: an auto (None) option is on for CUDA and off elsewhere;
    True or False is kept as given (True on a CPU runs the option there, for tests and the CPU rehearsal)."""
    cuda = device.type == "cuda"
    flags = {name: cuda if getattr(config, name) is None else bool(getattr(config, name)) for name in AUTO_FIELDS}
    return SpeedOptions(compile_scope=config.compile_scope, compile_backend=config.compile_backend, **flags)


@contextlib.contextmanager
def backend_settings(options: SpeedOptions) -> Iterator[None]:
    """``cudnn.benchmark`` and the float32 matmul precision of ``options`` inside the block, the previous
    values after it; touches nothing for an option that is off."""
    benchmark, precision = torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision()
    if options.cudnn_benchmark:
        torch.backends.cudnn.benchmark = True
    if options.tf32_matmul:
        torch.set_float32_matmul_precision("high")
    try:
        yield
    finally:
        if options.cudnn_benchmark:
            torch.backends.cudnn.benchmark = benchmark
        if options.tf32_matmul:
            torch.set_float32_matmul_precision(precision)


def compiled(fn, options: SpeedOptions):
    """``torch.compile(fn)`` with the options' backend (``fn``: the loss function or the network)."""
    return torch.compile(fn, backend=options.compile_backend)
