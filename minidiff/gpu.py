"""The GPU check that the image chapters run first: which device, and how to get a GPU if there is none.

A GPU chapter (MNIST, CIFAR-10) calls :func:`require_gpu` in its first cells. With a CUDA GPU it
reports the GPU and returns ``cuda``. Without one it stops the notebook with a message that says how
to enable a GPU (Colab: Runtime > Change runtime type > T4 GPU), instead of letting "Run all" start a
training run that would take hours on a CPU. In smoke mode (``MINIDIFF_SMOKE=1``), or with
``allow_cpu=True``, it falls back to the CPU and says so.
"""

from __future__ import annotations

import sys

import torch

from . import smoke

HOW_TO_ENABLE = (
    "On Google Colab: Runtime > Change runtime type > Hardware accelerator: T4 GPU > Save, then run the "
    "notebook again from the top. Elsewhere: install a CUDA build of PyTorch "
    "(https://pytorch.org/get-started/locally/) on a machine with an NVIDIA GPU."
)


class NoGPUError(RuntimeError):
    """Raised by :func:`require_gpu` when there is no CUDA GPU and the CPU was not allowed."""


def describe_gpu(index: int = 0) -> str:
    """One line on CUDA device ``index``: name, memory and compute capability (bf16 needs 8.0+)."""
    props = torch.cuda.get_device_properties(index)
    return (f"GPU cuda:{index}: {props.name}, {props.total_memory / 2**30:.1f} GiB, "
            f"compute capability {props.major}.{props.minor} "
            f"({'bf16' if props.major >= 8 else 'fp16 with a gradient scaler'} mixed precision)")


def require_gpu(allow_cpu: bool = False, chapter: str = "this chapter") -> torch.device:
    """``cuda`` when a CUDA GPU is present; otherwise the CPU in smoke mode or with ``allow_cpu``.

    With neither, raises :class:`NoGPUError` whose message says how to enable a GPU. Prints the
    device it picked, so a stored notebook output records the hardware its figures came from.
    """
    if not isinstance(allow_cpu, bool):
        raise TypeError(f"allow_cpu must be a bool, got {type(allow_cpu).__name__} {allow_cpu!r}")
    if torch.cuda.is_available():
        print(describe_gpu(0))
        return torch.device("cuda")
    in_colab = "google.colab" in sys.modules
    if smoke.enabled() or allow_cpu:
        why = "smoke mode (MINIDIFF_SMOKE=1)" if smoke.enabled() else "allow_cpu=True"
        print(f"No GPU found; running {chapter} on the CPU because of {why}. The full run needs a GPU: "
              + HOW_TO_ENABLE)
        return torch.device("cpu")
    where = "this Colab runtime has no GPU" if in_colab else f"no CUDA GPU is visible to torch {torch.__version__}"
    raise NoGPUError(
        f"{chapter} trains a U-Net and needs a GPU, but {where}. {HOW_TO_ENABLE} "
        "To run a quick, reduced version on the CPU instead, set MINIDIFF_SMOKE=1 before starting "
        "Jupyter, or call require_gpu(allow_cpu=True) to run the full version on the CPU (hours)."
    )
