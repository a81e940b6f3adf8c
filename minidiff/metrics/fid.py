"""FID and Inception Score with the TensorFlow Inception numbers that papers report, via torch-fidelity.

Why torch-fidelity (pinned in the ``[fid]`` extra: ``pip install "minidiff[fid]"``):

- it computes both metrics the DDPM paper reports (FID 3.17 and IS 9.46 on CIFAR-10, Table 1) in one
  pass over the images; pytorch-fid and clean-fid compute FID (and KID) but no Inception Score;
- it runs the original TF Inception graph (``pool_3`` features and logits of the 2015-12-05 weights,
  converted to PyTorch) and reimplements TF's bilinear resize to 299×299; its documentation states
  values that match the TensorFlow reference code to floating-point precision (a different resize
  alone moves FID, Parmar et al. 2022, so numbers from a PIL or torchvision resize are not comparable
  with papers; clean-fid in legacy-TF mode matches too, but again without IS);
- it takes in-memory uint8 tensors, so no image folder is written.

torch-fidelity needs torchvision, which must match the installed torch; that is why it is an extra
and never in requirements.txt. Its Inception weights (``WEIGHTS_FILE``) come from
``WEIGHTS_URL`` into torch's hub cache on first use; offline, :func:`inception_metrics` says which file
is missing and where to put it. The Fréchet and IS math itself is :mod:`minidiff.metrics.frechet`,
tested there with a small injected feature extractor; FID at 1k, 5k and 50k samples is not comparable
(small-n bias, see that module): report the n, 50k for numbers beside the paper's.
Chapter "CIFAR-10, the paper's recipe".
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{WEIGHTS_FILE}"


class FidUnavailableError(RuntimeError):
    """The FID/IS library or its Inception weights are missing (not installed, or offline)."""


def _import_torch_fidelity():
    try:
        import torch_fidelity
    except ImportError as err:  # torch_fidelity itself, or torchvision under it
        raise FidUnavailableError(
            f"FID and IS need the package torch-fidelity and torchvision ({err}). Install them with "
            "pip install \"minidiff[fid]\" (torchvision must match your torch). minidiff.metrics.frechet_distance "
            "and inception_score work without them on features from any extractor.") from err
    return torch_fidelity


def inception_weights(weights_path: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The path of the TF Inception weights: ``weights_path``, else torch's hub cache, downloading them once."""
    if weights_path is not None:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise FidUnavailableError(f"weights_path {str(path)!r} is not a file; the Inception weights "
                                      f"{WEIGHTS_FILE} come from {WEIGHTS_URL}")
        return path
    path = Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE
    if path.is_file():
        return path
    if download:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(WEIGHTS_URL, str(path), progress=True)
            return path
        except Exception as err:  # noqa: BLE001 (any network or disk failure ends in the same message)
            reason = f": {err}"
    else:
        reason = " and download=False"
    raise FidUnavailableError(
        f"the Inception weights {WEIGHTS_FILE} are not in {path.parent} and could not be fetched from "
        f"{WEIGHTS_URL}{reason}. Download that file on a machine with internet and copy it to {path} "
        "(or pass weights_path=...).")


class _Uint8Images(torch.utils.data.Dataset):
    """(N, C, H, W) images as the (3, H, W) uint8 tensors torch-fidelity reads (grey repeated to RGB)."""

    def __init__(self, images: torch.Tensor) -> None:
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"images must be a tensor (N, 1 or 3, H, W), got {getattr(images, 'shape', images)!r}")
        if images.dtype != torch.uint8:
            if not images.is_floating_point():
                raise TypeError(f"images must be uint8 or floating point in [-1, 1], got dtype {images.dtype}")
            images = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        self.images = images.cpu()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        x = self.images[i]
        return x.expand(3, -1, -1).contiguous() if x.shape[0] == 1 else x


def inception_metrics(samples: torch.Tensor, reference: torch.Tensor | str | None = None, *, fid: bool = True,
                      isc: bool = True, batch_size: int = 64, cuda: bool | None = None,
                      weights_path: str | os.PathLike | None = None, verbose: bool = False) -> dict[str, float]:
    """FID of ``samples`` against ``reference`` and the Inception Score of ``samples``, as papers compute them.

    samples: (N, C, H, W) uint8 or float in [−1, 1], C = 1 (repeated to RGB) or 3. reference: images
    as samples, or the name of a torch-fidelity input such as ``"cifar10-train"`` (the paper's FID is
    against the training set). Returns ``{"fid": ..., "is_mean": ..., "is_std": ...}`` (IS over 10
    splits). ``cuda`` defaults to whether a GPU is available. See the module docstring for the small-n bias.
    """
    if not (fid or isc):
        raise ValueError("inception_metrics needs fid=True or isc=True")
    if fid and reference is None:
        raise ValueError("fid=True needs reference images (or a torch-fidelity input name such as 'cifar10-train')")
    torch_fidelity = _import_torch_fidelity()
    weights = inception_weights(weights_path)
    input2 = None
    if fid:
        input2 = reference if isinstance(reference, str) else _Uint8Images(reference)
    out = torch_fidelity.calculate_metrics(
        input1=_Uint8Images(samples), input2=input2, fid=fid, isc=isc, batch_size=batch_size,
        cuda=torch.cuda.is_available() if cuda is None else cuda, feature_extractor="inception-v3-compat",
        feature_extractor_weights_path=str(weights), cache=False, verbose=verbose)
    result = {}
    if fid:
        result["fid"] = float(out["frechet_inception_distance"])
    if isc:
        result["is_mean"] = float(out["inception_score_mean"])
        result["is_std"] = float(out["inception_score_std"])
    return result
