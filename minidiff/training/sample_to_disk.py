"""Sampling many images to disk: in chunks, 16-bit on GPUs, reproducible per image whatever the chunk size.

An evaluation set of 50,000 samples (the paper's FID protocol, Sec. 4) does not fit in one batch.
:func:`sample_to_disk` runs Algorithm 2 (or DDIM) through :func:`minidiff.samplers.sample_loop`,
chunk after chunk, under ``torch.inference_mode``, the network under bf16 autocast where the GPU
has native bf16 (everything after the network stays in fp32) and optionally compiled. Each chunk is
converted to uint8 and appended to an ``.npz`` file at once, so no float copy of all images is ever
held; PNG grids show the first images. Chapter "Training on images".

Reproducible per image index. Images are split into *noise groups* of ``noise_group`` consecutive
indices; group k draws its x_T and every z of Algorithm 2 from its own generator, seeded from
``(seed, k)`` alone. A chunk is a whole number of groups: each group runs its own ``sample_loop``
(all the math), while one network call per step evaluates the whole chunk. So image i depends only
on ``(seed, i // noise_group)``, never on the chunk size or on how many images are drawn: its noise
is the same bit for bit. Its pixels are too, unless the network's float arithmetic depends on the
batch size (CPU and GPU convolution libraries pick kernels per shape): then a rare pixel moves by one
uint8 level (measured: 1 of 4,704 pixels with a barely trained network, ``tests/test_cli.py``). It
also depends on the device (CPU and CUDA generators differ) and, through rounding, on the precision.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data.images import save_image_grid, to_uint8
from ..samplers import sample_loop
from ..schedules import Schedule

AMP_CHOICES = ("auto", "bf16", "off")
# sample_to_disk sets these sample_loop arguments itself (per noise group).
_RESERVED = ("x_T", "generator", "seed", "device", "model_kwargs", "progress")


@dataclass
class SampleRun:
    """What :func:`sample_to_disk` wrote: the ``.npz`` (key ``arr_0``: uint8 (N, H, W, C); ``arr_1``: labels
    if any), the PNG grids, the number of images, the wall time and images/s (chunks, network calls included)."""

    npz: Path
    grids: list[Path] = field(default_factory=list)
    n: int = 0
    seconds: float = 0.0
    images_per_s: float = 0.0
    chunk_size: int = 0
    network_calls: int = 0


def _check_int(name: str, value, ge: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < ge:
        raise ValueError(f"{name} must be an int >= {ge}, got {name} = {value!r}")
    return int(value)


def group_seed(seed: int, group: int) -> int:
    """The seed of noise group ``group``: 64 bits of ``numpy.random.SeedSequence([seed, group])``."""
    return int(np.random.SeedSequence([seed, group]).generate_state(1, np.uint64)[0])


def resolve_sampling_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """bf16 for ``auto`` on a CUDA GPU with native bf16 (compute capability 8.0+), else None (fp32)."""
    if amp not in AMP_CHOICES:
        raise ValueError(f"amp must be one of {', '.join(AMP_CHOICES)}, got amp = {amp!r}")
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp == "auto":
        try:
            native = torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # torch < 2.3
            native = torch.cuda.is_bf16_supported()
        return torch.bfloat16 if native else None
    return torch.bfloat16


class _ChunkNetwork:
    """The network, called by every noise group's ``sample_loop`` but evaluated once per step for the chunk.

    Before each step the driver hands over the states the loops just yielded (:meth:`next_step`).
    The first group's call then evaluates the network on all of them at once; every group gets its
    slice, in fp32. A call with an input that is not the state its loop yielded (which
    ``sample_loop`` never does) is evaluated on its own, so the result stays right either way.
    """

    def __init__(self, net: Callable, autocast_dtype: torch.dtype | None, device: torch.device) -> None:
        self.net, self.autocast_dtype, self.device = net, autocast_dtype, device
        self.inputs: list[torch.Tensor] = []
        self.outputs: list[torch.Tensor] | None = None
        self.calls = 0

    def next_step(self, xs: list[torch.Tensor]) -> None:
        self.inputs, self.outputs = xs, None

    def _evaluate(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        amp = (torch.autocast(self.device.type, dtype=self.autocast_dtype) if self.autocast_dtype
               else contextlib.nullcontext())
        with amp:
            return self.net(x, t).float()

    def member(self, g: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        def call(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            if x is not self.inputs[g]:
                return self._evaluate(x, t)
            if self.outputs is None:
                x_all = torch.cat(self.inputs)
                # Every group is at the same step, hence at the same t.
                t_all = t[:1].expand(x_all.shape[0]) if torch.is_tensor(t) and t.dim() == 1 else t
                self.outputs = list(self._evaluate(x_all, t_all).split([len(x) for x in self.inputs]))
            return self.outputs[g]

        return call


class _NpzWriter:
    """Appends uint8 images (n, H, W, C) to the ``arr_0.npy`` member of an ``.npz`` as they come."""

    def __init__(self, path: Path, shape: tuple[int, int, int, int]) -> None:
        self.path, self.tmp = path, path.with_name(path.name + ".part")
        self.zip = zipfile.ZipFile(self.tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
        self.member = self.zip.open("arr_0.npy", "w", force_zip64=True)
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_2_0(self.member, header)
        self.expected, self.written = int(np.prod(shape)), 0

    def append(self, images: np.ndarray) -> None:
        data = np.ascontiguousarray(images, dtype=np.uint8)
        self.member.write(data.tobytes())
        self.written += data.size

    def close(self, labels: np.ndarray | None) -> None:
        self.member.close()
        if labels is not None:
            with self.zip.open("arr_1.npy", "w") as f:
                np.lib.format.write_array(f, np.asarray(labels))
        self.zip.close()
        if self.written != self.expected:
            raise RuntimeError(f"internal error: wrote {self.written} of {self.expected} bytes to {self.tmp}")
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.member.close()
            self.zip.close()
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()


def _check_labels(labels: torch.Tensor | None, n: int, model) -> torch.Tensor | None:
    num_classes = getattr(model, "num_classes", None)
    if labels is None:
        return None
    if num_classes is None:
        raise ValueError("labels were given but the network is not class-conditional (num_classes is None)")
    labels = torch.as_tensor(labels)
    if labels.shape != (n,) or labels.dtype.is_floating_point:
        raise ValueError(f"labels must be n = {n} integer labels, got {labels.dtype} of shape {tuple(labels.shape)}")
    if n and not (0 <= int(labels.min()) and int(labels.max()) < num_classes):
        raise ValueError(f"labels must be in [0, {num_classes}), got min {int(labels.min())}, max {int(labels.max())}")
    return labels.long().cpu()  # on the CPU: the .npz writer stores them; each chunk moves its slice


def _chunk_net(model, labels: torch.Tensor | None, guidance: float, device: torch.device):
    """model(x, t) for one chunk: conditioned on the chunk's labels, guided if ``guidance`` > 0."""
    if labels is None:
        return model
    y = labels.to(device)
    if guidance:
        from ..nets.unet import guided

        return guided(model, y, guidance)
    return lambda x, t: model(x, t, y)


def sample_to_disk(
    model, shape: tuple[int, ...], schedule: Schedule, out: str | os.PathLike, *, chunk_size: int = 1024,
    noise_group: int = 16, seed: int = 0, labels: torch.Tensor | None = None, guidance: float = 0.0,
    amp: str = "auto", compile: bool = False, device: torch.device | str | None = None, grid_n: int = 64,
    grids: int = 1, name: str = "samples", progress: bool = True, **sample_kwargs,
) -> SampleRun:
    """Draw ``shape[0]`` images with :func:`~minidiff.samplers.sample_loop` in chunks and stream them to ``out``.

    Algorithm 2 of Ho et al. (2020) by default (``sampler="ddpm"``, all T steps), or any sampler of
    :func:`~minidiff.samplers.sample_loop`: ``sample_kwargs`` (``sampler``, ``steps``, ``spacing``,
    ``eta``, ``parameterization``, ``variance``, ``clip_x0``) go to it unchanged. Chapter "Training
    on images".

    Args:
        model: the trained network, model(x_t, t) or model(x_t, t, y) -> (B, C_out, H, W).
        shape: (N, C, H, W): N images of size (C, H, W).
        schedule: the schedule the network was trained with.
        out: folder for ``<name>.npz`` (uint8 images (N, H, W, C) under ``arr_0``, the layout of the
            common FID evaluators; labels under ``arr_1``) and ``<name>-<first index>.png`` grids.
        chunk_size: images per network call (a multiple of ``noise_group``); more is faster until the
            GPU is full. The chunk size never changes the images.
        noise_group: images per noise generator: image i draws its noise from the generator of group
            i // noise_group, seeded by :func:`group_seed` from (seed, group). 1 gives each image its
            own stream; larger groups cost less Python time per step on a GPU.
        seed: the seed of every noise group.
        labels: (N,) class labels for a class-conditional network (default: its null class).
        guidance: classifier-free guidance scale w (Ho & Salimans 2022) with ``labels``; 0: none.
        amp: ``auto`` (bf16 on CUDA GPUs with native bf16, else fp32), ``bf16`` or ``off``; only the
            network runs in it, everything after it in fp32.
        compile: ``torch.compile`` the network (one fixed chunk shape: the last chunk is padded).
        device: the sampling device (default: the model's).
        grid_n, grids: a PNG grid of the first ``grid_n`` images of each of the first ``grids`` chunks.
        name: the file stem of the outputs.
        progress: a tqdm bar over all N images, advanced at every step of every chunk.

    Returns a :class:`SampleRun`. The ``.npz`` is written as ``<name>.npz.part`` and renamed at the end.
    """
    from tqdm.auto import tqdm

    n, image_shape, labels = _check_arguments(model, shape, chunk_size=chunk_size, noise_group=noise_group, seed=seed,
                                              grid_n=grid_n, grids=grids, guidance=guidance, labels=labels,
                                              sample_kwargs=sample_kwargs)
    device = _default_device(model, device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    autocast_dtype = resolve_sampling_amp(amp, device)
    net_model = torch.compile(model, dynamic=False) if compile else model
    # Never more groups per chunk than the images need; compiled: every chunk has this one shape.
    chunk_size = min(chunk_size, math.ceil(n / noise_group) * noise_group)
    C, H, W = image_shape
    writer = _NpzWriter(out / f"{name}.npz", (n, H, W, C))
    run = SampleRun(out / f"{name}.npz", chunk_size=chunk_size)
    bar = tqdm(total=n, disable=not progress, unit="img", desc="sampling", dynamic_ncols=True)
    was_training = getattr(model, "training", False)
    if was_training:
        model.eval()
    start = time.perf_counter()
    try:
        with torch.inference_mode():
            chunks = _chunks(net_model, labels, n=n, chunk_size=chunk_size, noise_group=noise_group,
                             pad_to_chunk=compile, image_shape=image_shape, schedule=schedule, seed=seed,
                             device=device, guidance=guidance, autocast_dtype=autocast_dtype,
                             sample_kwargs=sample_kwargs, bar=bar)
            for first, images, calls in chunks:
                run.network_calls += calls
                _store_chunk(images, first, writer, run, out=out, name=name, grid_n=grid_n, grids=grids)
                bar.update(first + len(images) - bar.n)  # exact at the end of each chunk
        writer.close(None if labels is None else labels.numpy())
    except BaseException:
        writer.abort()
        raise
    finally:
        bar.close()
        if was_training:
            model.train()
    run.n, run.seconds = n, time.perf_counter() - start
    run.images_per_s = n / run.seconds if run.seconds > 0 else float("inf")
    return run


def _check_arguments(model, shape: tuple[int, ...], *, chunk_size: int, noise_group: int, seed: int, grid_n: int,
                     grids: int, guidance: float, labels: torch.Tensor | None,
                     sample_kwargs: dict) -> tuple[int, tuple[int, int, int], torch.Tensor | None]:
    """:func:`sample_to_disk`'s checks at the door; returns (N, (C, H, W), the labels as int64 or None)."""
    if (not isinstance(shape, (tuple, list, torch.Size)) or len(shape) != 4
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape)):
        raise ValueError(f"shape must be (N, C, H, W) of positive ints, got shape = {shape!r}")
    n, image_shape = int(shape[0]), tuple(int(s) for s in shape[1:])
    _check_int("noise_group", noise_group, 1)
    _check_int("chunk_size", chunk_size, 1)
    if chunk_size % noise_group:
        raise ValueError(f"chunk_size must be a multiple of noise_group = {noise_group}, got chunk_size = {chunk_size}")
    _check_int("seed", seed, 0)
    _check_int("grid_n", grid_n, 0)
    _check_int("grids", grids, 0)
    if not (isinstance(guidance, (int, float)) and math.isfinite(guidance) and guidance >= 0):
        raise ValueError(f"guidance must be a finite number >= 0, got guidance = {guidance!r}")
    reserved = sorted(set(sample_kwargs) & set(_RESERVED))
    if reserved:
        raise ValueError(f"sample_to_disk sets {reserved} itself (per noise group); leave them out")
    labels = _check_labels(labels, n, model)
    if guidance and labels is None:
        raise ValueError(f"guidance = {guidance} needs labels")
    return n, image_shape, labels


def _default_device(model, device: torch.device | str | None) -> torch.device:
    """``device``, else the device of the model's parameters (CPU for a model without any)."""
    if device is None:
        try:
            device = next(model.parameters()).device
        except (AttributeError, StopIteration):
            device = torch.device("cpu")
    return torch.device(device)


def _chunks(net_model, labels: torch.Tensor | None, *, n: int, chunk_size: int, noise_group: int, pad_to_chunk: bool,
            image_shape: tuple[int, int, int], schedule: Schedule, seed: int, device: torch.device, guidance: float,
            autocast_dtype: torch.dtype | None, sample_kwargs: dict, bar) -> Iterator[tuple[int, torch.Tensor, int]]:
    """The chunk loop: yields (index of the chunk's first image, its images (count, C, H, W) fp32, network calls).

    A chunk is padded to whole noise groups (to ``chunk_size`` when ``pad_to_chunk``, for one compiled
    shape); padded images get label 0 and are dropped. ``bar`` advances at every step of every chunk.
    """
    for first in range(0, n, chunk_size):
        count = min(chunk_size, n - first)  # real images in this chunk
        padded = chunk_size if pad_to_chunk else math.ceil(count / noise_group) * noise_group
        chunk_labels = None
        if labels is not None:
            chunk_labels = torch.zeros(padded, dtype=torch.long)
            chunk_labels[:count] = labels[first:first + count]
        proxy = _ChunkNetwork(_chunk_net(net_model, chunk_labels, guidance, device), autocast_dtype, device)
        images = _sample_chunk(proxy, first, padded, image_shape, schedule, noise_group, seed, device,
                               sample_kwargs, lambda frac, c=count: bar.update(c * frac))[:count]
        yield first, images, proxy.calls


def _store_chunk(images: torch.Tensor, first: int, writer: _NpzWriter, run: SampleRun, *, out: Path, name: str,
                 grid_n: int, grids: int) -> None:
    """Append a chunk (count, C, H, W) in [−1, 1] to the ``.npz`` as uint8 (count, H, W, C); a PNG grid of its
    first ``grid_n`` images while fewer than ``grids`` were written."""
    images_u8 = to_uint8(images)
    if len(run.grids) < grids and grid_n:
        path = out / f"{name}-{first:06d}.png"
        save_image_grid(images[:grid_n], path)
        run.grids.append(path)
    writer.append(images_u8.permute(0, 2, 3, 1).cpu().numpy())


def _sample_chunk(proxy: _ChunkNetwork, first: int, count: int, image_shape: tuple[int, int, int],
                  schedule: Schedule, noise_group: int, seed: int, device: torch.device, sample_kwargs: dict,
                  on_step: Callable[[float], None]) -> torch.Tensor:
    """Images ``first .. first + count - 1`` (count a multiple of noise_group): one sample_loop per noise group,
    advanced in lockstep so that the network sees the whole chunk at each step. Returns (count, C, H, W) fp32."""
    loops = []
    for k in range(first // noise_group, (first + count) // noise_group):
        gen = torch.Generator(device=device).manual_seed(group_seed(seed, k))
        loops.append(sample_loop(proxy.member(len(loops)), (noise_group, *image_shape), schedule, generator=gen,
                                 device=device, **sample_kwargs))
    states = [next(loop) for loop in loops]  # x_T of every group
    steps = sample_kwargs.get("steps") or schedule.T
    while True:
        proxy.next_step([s.x for s in states])
        try:
            states = [next(loop) for loop in loops]
        except StopIteration:
            break
        on_step(1.0 / steps)
    return torch.cat([s.x for s in states]).float()


__all__ = ["SampleRun", "group_seed", "resolve_sampling_amp", "sample_to_disk"]
