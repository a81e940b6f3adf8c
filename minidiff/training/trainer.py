"""The image trainer: Algorithm 1 of Ho et al. (2020) at scale, with a run that is never lost.

Each step draws x_0 from the data, t ~ Uniform({1, ..., T}) and ε ~ N(0, I), and takes an Adam
step on ∇_θ ‖ε − ε_θ(√ᾱ_t x_0 + √(1−ᾱ_t) ε, t)‖² (Algorithm 1; the loss is
:func:`minidiff.losses.training_losses`). Around it: the paper's recipe (:class:`TrainConfig`),
an EMA of the weights, AMP, ``channels_last``, optional ``torch.compile``, DDP, a CSV log, periodic
sample grids, atomic checkpoints with exact resume, a final checkpoint on Ctrl-C or SIGTERM
(pre-emption), a refusal to start a new run over an old one, and a guard that stops at the first
non-finite loss or gradient. Chapter "Training on images".
"""

from __future__ import annotations

import contextlib
import csv
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch

from ..data.images import ImageBatcher, ImageData, load_dataset, save_image_grid
from ..losses import training_losses
from ..samplers import sample
from ..schedules import get_schedule
from .checkpoint import CheckpointError, check_run_dir, load_checkpoint, remove_run, save_numbered
from .config import TrainConfig, build_model, config_mismatch
from .distributed import DistInfo, all_reduce_mean, barrier, cleanup, gather_objects, init_distributed, max_over_ranks
from .ema import EMA

LOG_FIELDS = ("step", "loss", "grad_norm", "lr", "images_per_s", "elapsed_s")
# Signals that end a run with a checkpoint at the step reached: Ctrl-C, and the SIGTERM that SLURM,
# Colab and torchrun send before they kill a process.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class NonFiniteError(RuntimeError):
    """The loss or the gradient became NaN or infinite; the run stopped without saving."""


def _native_bf16() -> bool:
    """True on GPUs with bf16 arithmetic (compute capability 8.0+); a T4 (7.5) only emulates it, slowly."""
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # torch < 2.3 has no including_emulation and reports native support only
        return torch.cuda.is_bf16_supported()


def resolve_amp(amp: str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, use a GradScaler): bf16 where the GPU supports it, else fp16 + scaler; off on CPU."""
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None, False
    if amp == "auto":
        amp = "bf16" if _native_bf16() else "fp16"
    if amp == "fp16" and device.type != "cuda":
        raise ValueError(f"amp='fp16' needs a CUDA device, got device = {device}; use amp='bf16' or 'off'")
    return (torch.bfloat16, False) if amp == "bf16" else (torch.float16, True)


def warmup_lr(step: int, lr: float, warmup: int) -> float:
    """lr · min(step / warmup, 1): the official code's linear warm-up (step counts from 0)."""
    return lr if warmup == 0 else lr * min(step / warmup, 1.0)


@torch.no_grad()
def sample_images(model, config: TrainConfig | dict, n: int, *, sampler: str = "ddim", steps: int | None = 50,
                  seed: int = 0, device: torch.device | str = "cpu", labels: torch.Tensor | None = None,
                  progress: bool = False) -> torch.Tensor:
    """n images (n, C, H, W) in [−1, 1] from a trained network, with x̂_0 clipped to [−1, 1] as in the paper.

    Uses :func:`minidiff.samplers.sample`; class-conditional networks get ``labels`` (default: 0, 1, 2, ...).
    """
    from ..nets.presets import get_preset

    c = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    shape = (n, *get_preset(c.preset).image_shape)
    kwargs = {}
    if getattr(model, "num_classes", None) is not None:
        y = labels if labels is not None else torch.arange(n) % model.num_classes
        kwargs["model_kwargs"] = {"y": y.to(device)}
    return sample(model, shape, get_schedule(c.schedule, c.T), sampler=sampler, steps=steps,
                  parameterization=c.parameterization, variance=c.variance, clip_x0=1.0, seed=seed,
                  device=device, progress=progress, **kwargs)


class Trainer:
    """Trains the U-Net of ``config.preset`` on ``config.data``; ``fit()`` runs to ``config.steps``.

    ``resume=True`` continues from ``<out>/last.pt`` (if it exists) after checking that the
    run-defining fields of its config equal this config's. Without it, a folder that already holds
    a run (``last.pt`` or ``ckpt-*.pt``) is refused with a ValueError, unless ``overwrite=True``,
    which deletes that run's checkpoints, ``log.csv`` and sample grids (see
    :func:`~minidiff.training.checkpoint.check_run_dir`).
    ``data`` replaces the named data set (tests use small arrays).
    """

    def __init__(self, config: TrainConfig, *, resume: bool = False, overwrite: bool = False,
                 data: ImageData | None = None, dist_info: DistInfo | None = None) -> None:
        self.config = c = config
        self.out = Path(c.out)
        check_run_dir(self.out, resume=resume, overwrite=overwrite)
        self.dist = dist_info or init_distributed(c.device)
        self.device = self.dist.device
        resume_state = None
        if resume and (self.out / "last.pt").exists():  # refuse another run's checkpoint before any work
            resume_state = self._check_resumable(self.out / "last.pt")
        self.amp_dtype, use_scaler = resolve_amp(c.amp, self.device)
        torch.manual_seed(c.seed + self.dist.rank)  # initial weights: same on every rank; dropout differs
        self.model = build_model(c)
        torch.manual_seed(c.seed + self.dist.rank)
        self.channels_last = c.channels_last and self.device.type == "cuda"
        self.model.to(self.device, memory_format=torch.channels_last if self.channels_last else torch.preserve_format)
        self.ema = EMA(self.model, c.ema_decay)
        fused = self.device.type == "cuda"
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=c.lr, betas=(c.adam_beta1, c.adam_beta2),
                                          eps=c.adam_eps, fused=fused or None)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=use_scaler)
        self.schedule = get_schedule(c.schedule, c.T).to(self.device)

        if data is None:  # the main process downloads first; the others then read its cache
            if not self.dist.is_main:
                barrier(self.dist)
            data = load_dataset(c.data, root=c.data_dir, offline=c.offline)
            if self.dist.is_main:
                barrier(self.dist)
            self._expect_preset_shape = True
        else:
            self._expect_preset_shape = False
        self.data = data
        from ..nets.presets import get_preset

        expected = get_preset(c.preset).image_shape
        if self._expect_preset_shape and self.data.image_shape != expected:
            raise ValueError(f"preset {c.preset!r} is for images {expected}, data {c.data!r} has "
                             f"{self.data.image_shape}")
        flip = self.data.flip if c.flip is None else c.flip
        self.batcher = ImageBatcher(self.data.images, self.data.labels if c.class_conditional else None,
                                    c.batch_size, flip=flip, device=self.device, seed=c.seed,
                                    rank=self.dist.rank, world_size=self.dist.world_size)
        self.noise_gen = torch.Generator(device=self.device).manual_seed(c.seed + 1)
        self.step = 0
        self._saved_step = -1
        if resume_state is not None:
            self.load(self.out / "last.pt", resume_state)

        net = self.model
        if self.dist.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            net = DDP(net, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.net = torch.compile(net) if c.compile else net
        self._stop = False
        self.stopped_by: int | None = None  # the signal number that ended the last fit() early, if any
        if overwrite and self.dist.is_main:  # everything above succeeded: only now delete the old run
            remove_run(self.out)

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (collective in DDP: every rank must call it)."""
        cpu_states = gather_objects(torch.get_rng_state(), self.dist)
        cuda_states = gather_objects(torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [], self.dist)
        return {
            "step": self.step, "config": self.config.to_dict(), "model": self.model.state_dict(),
            "ema": self.ema.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": {"cpu": cpu_states, "cuda": cuda_states, "data": self.batcher.state_dict(),
                    "noise": self.noise_gen.get_state()},
        }

    def _check_resumable(self, path: str | Path) -> dict[str, Any]:
        state = load_checkpoint(path, map_location=self.device)
        diff = config_mismatch(state["config"], self.config.to_dict())
        if diff:
            raise CheckpointError(f"{path} is from a different run; {diff}")
        return state

    def load(self, path: str | Path, state: dict[str, Any] | None = None) -> None:
        """Restore a checkpoint of the same run (same :data:`~minidiff.training.config.RUN_FIELDS`)."""
        state = state if state is not None else self._check_resumable(path)
        try:
            self.model.load_state_dict(state["model"])
            self.ema.load_state_dict(state["ema"])
            self.optimizer.load_state_dict(state["optimizer"])
            if state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])
            rng = state["rng"]
            self.batcher.load_state_dict(rng["data"])
            self.noise_gen.set_state(rng["noise"].cpu())
        except (KeyError, RuntimeError, ValueError) as e:
            raise CheckpointError(f"{path} could not be restored: {type(e).__name__}: {str(e).splitlines()[0]}") from e
        self.step = self._saved_step = int(state["step"])
        cpu = rng["cpu"]
        if len(cpu) == self.dist.world_size:  # same number of processes: each rank continues its own stream
            torch.set_rng_state(cpu[self.dist.rank].cpu())
            if torch.cuda.is_available() and len(rng["cuda"]) == self.dist.world_size and rng["cuda"][self.dist.rank]:
                torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"][self.dist.rank]])
        else:  # a different world size: a fresh, still deterministic dropout stream per rank
            torch.manual_seed(self.config.seed + 1000 * self.step + self.dist.rank)

    def save(self) -> Path | None:
        """Write ``ckpt-<step>.pt`` and ``last.pt`` (main process only), keeping the newest ``keep``."""
        state = self.state_dict()
        path = None
        if self.dist.is_main:
            path = save_numbered(state, self.out, self.step, self.config.keep)
        self._saved_step = self.step
        barrier(self.dist)
        return path

    # ---------------------------------------------------------------- training
    def _train_step(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of Algorithm 1 on this rank's part of the batch; returns (loss, grad norm) on device."""
        c, B = self.config, self.config.batch_size
        x0, y = self.batcher.next()
        part = slice(self.dist.rank * x0.shape[0], (self.dist.rank + 1) * x0.shape[0])
        # t and ε for the whole global batch, then this rank's slice: W processes == 1 process.
        t = torch.randint(1, c.T + 1, (B,), device=self.device, generator=self.noise_gen)[part]
        noise = torch.randn((B, *x0.shape[1:]), device=self.device, generator=self.noise_gen)[part]
        model_kwargs = None
        if c.class_conditional:
            drop = torch.rand(B, device=self.device, generator=self.noise_gen)[part] < c.class_dropout
            model_kwargs = {"y": torch.where(drop, torch.full_like(y, self.model.num_classes), y)}
        if self.channels_last:
            x0 = x0.contiguous(memory_format=torch.channels_last)
            noise = noise.contiguous(memory_format=torch.channels_last)
        for group in self.optimizer.param_groups:
            group["lr"] = warmup_lr(self.step, c.lr, c.warmup)
        autocast = torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype else \
            contextlib.nullcontext()
        with autocast:
            loss = training_losses(self.net, x0, self.schedule, t=t, noise=noise, loss=c.loss,
                                   parameterization=c.parameterization, variance=c.variance,
                                   model_kwargs=model_kwargs).mean()
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        params = list(self.model.parameters())
        if c.grad_clip > 0:
            grad_norm = torch.nn.utils.clip_grad_norm_(params, c.grad_clip, foreach=True)
        else:
            grad_norm = torch.nn.utils.clip_grad_norm_(params, float("inf"), foreach=True)  # the norm, no clipping
        self.scaler.step(self.optimizer)  # skipped by the scaler after an fp16 overflow
        self.scaler.update()
        self.ema.update(self.model)
        return loss.detach(), grad_norm.detach()

    def _check_finite(self, step: int, loss: torch.Tensor, grad_norm: torch.Tensor) -> None:
        # Under fp16 an infinite gradient is an overflow the GradScaler skips; only the loss counts then.
        ok = torch.isfinite(loss) if self.scaler.is_enabled() else torch.isfinite(loss) & torch.isfinite(grad_norm)
        if bool(ok):
            return
        amp = {None: "off", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.amp_dtype]
        raise NonFiniteError(
            f"non-finite training signal at step {step} (loss = {loss.item():.4g}, gradient norm = "
            f"{grad_norm.item():.4g}); stopped without saving, so the last good checkpoint in {self.out} is "
            f"untouched. Likely causes: a learning rate too high (lr = {self.config.lr}; try a smaller one or a "
            f"longer warm-up), mixed precision (amp = {amp}; try --amp bf16 or --amp off), or too little "
            f"gradient clipping (grad_clip = {self.config.grad_clip}).")

    def _sample_grid(self) -> None:
        c = self.config
        images = sample_images(self.ema.model, c, c.sample_n, sampler=c.sample_sampler, steps=c.sample_steps,
                               seed=c.seed, device=self.device)
        (self.out / "samples").mkdir(parents=True, exist_ok=True)
        save_image_grid(images, self.out / "samples" / f"step-{self.step:08d}.png")

    def _open_log(self):
        path = self.out / "log.csv"
        rows = []
        if path.exists():  # drop rows past the resumed step: the log then reads like one straight run
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if r.get("step", "").isdigit() and int(r["step"]) <= self.step]
        f = open(path, "w", newline="")  # noqa: SIM115 (closed in fit)
        writer = csv.DictWriter(f, fieldnames=LOG_FIELDS)
        writer.writeheader()
        writer.writerows({k: r.get(k, "") for k in LOG_FIELDS} for r in rows)
        return f, writer

    def _install_signal_handlers(self) -> dict[int, Any]:
        """On SIGINT or SIGTERM, finish the current step, save and return; a second one stops at once.

        Main thread only (Python delivers signals there); a signal that is ignored (SIG_IGN) stays
        ignored. Returns the previous handlers, which :meth:`fit` puts back.
        """
        if threading.current_thread() is not threading.main_thread():
            return {}

        def handler(signum, frame):
            if self._stop:  # a second signal: stop now, without a checkpoint
                print(f"minidiff: second {signal.Signals(signum).name}: stopping now without a new checkpoint "
                      "(the last one written stays intact)", file=sys.stderr, flush=True)
                if signum == signal.SIGINT:
                    raise KeyboardInterrupt
                raise SystemExit(128 + signum)
            self._stop = True
            self.stopped_by = signum

        previous = {}
        for sig in STOP_SIGNALS:
            if signal.getsignal(sig) is not signal.SIG_IGN:
                previous[sig] = signal.signal(sig, handler)
        return previous

    def fit(self) -> dict[str, float]:
        """Train until ``config.steps``; checkpoint every ``ckpt_every`` steps, at the end, and on SIGINT/SIGTERM.

        A signal (Ctrl-C, or the SIGTERM of a pre-empting scheduler) finishes the current step, saves a
        checkpoint there and returns; :attr:`stopped_by` then holds the signal number. Under DDP the
        ranks agree on the step to stop at (one step after the first rank's signal), so their
        collective checkpoint cannot deadlock. Raises :class:`NonFiniteError` at the first non-finite
        loss or gradient, without saving. Returns {"step", "loss" (mean over the last log interval), "seconds"}.
        """
        from tqdm.auto import tqdm

        c, main = self.config, self.dist.is_main
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
        log_file, writer = self._open_log() if main else (None, None)
        self._stop, self.stopped_by = False, None
        old_handlers = self._install_signal_handlers()
        bar = tqdm(total=c.steps, initial=self.step, disable=not (c.progress and main), desc="training",
                   unit="it", dynamic_ncols=True)
        self.model.train()
        start = last_time = time.perf_counter()
        loss_sum, n_sum, last_loss, last_step = None, 0, float("nan"), self.step
        pending = None  # (step, loss, grad norm) of the previous step, checked one step late (no GPU stall)
        stop_flag = None  # DDP: the signal any rank got, as of the previous step (0: none), read one step late
        try:
            while self.step < c.steps and not (self._stop and not self.dist.distributed):
                loss, grad_norm = self._train_step()
                self.step += 1
                if pending is not None:
                    self._check_finite(*pending)
                pending = (self.step, loss, grad_norm)
                loss_sum = loss if loss_sum is None else loss_sum + loss
                n_sum += 1
                bar.update(1)
                due_log = self.step % c.log_every == 0 or self.step == c.steps
                due_ckpt = self.step % c.ckpt_every == 0
                due_sample = c.sample_every and self.step % c.sample_every == 0
                if due_log or due_ckpt or due_sample:
                    self._check_finite(*pending)
                    pending = None
                if due_log:
                    now = time.perf_counter()
                    last_loss = all_reduce_mean(loss_sum / n_sum, self.dist).item()  # over the global batch
                    ips = (self.step - last_step) * c.batch_size / max(now - last_time, 1e-9)
                    bar.set_postfix(loss=f"{last_loss:.4f}", img_s=f"{ips:.0f}")
                    if main:
                        writer.writerow({"step": self.step, "loss": f"{last_loss:.6f}",
                                         "grad_norm": f"{grad_norm.item():.4f}",
                                         "lr": f"{warmup_lr(self.step - 1, c.lr, c.warmup):.3e}",
                                         "images_per_s": f"{ips:.1f}", "elapsed_s": f"{now - start:.1f}"})
                        log_file.flush()
                    loss_sum, n_sum, last_time, last_step = None, 0, now, self.step
                if due_sample and main:
                    self._sample_grid()
                if due_ckpt:
                    self.save()
                if self.dist.distributed:  # every rank reads the same value, so all stop after the same step
                    signum = 0 if stop_flag is None else int(stop_flag.item())
                    stop_flag = max_over_ranks(self.stopped_by or 0, self.dist)
                    if signum:
                        self.stopped_by = self.stopped_by or signum
                        break
            if pending is not None:
                self._check_finite(*pending)
            if loss_sum is not None:  # steps since the last log row (e.g. after Ctrl-C)
                last_loss = (loss_sum / n_sum).item()
            if self._saved_step != self.step:
                self.save()  # at exit (the end, or a signal at a step boundary)
        finally:
            bar.close()
            if log_file is not None:
                log_file.close()
            for sig, old in old_handlers.items():
                signal.signal(sig, old if old is not None else signal.SIG_DFL)
        return {"step": self.step, "loss": last_loss, "seconds": time.perf_counter() - start}

    def close(self) -> None:
        cleanup(self.dist)


def train(config: TrainConfig, *, resume: bool = False, overwrite: bool = False,
          data: ImageData | None = None) -> dict[str, float]:
    """Build a :class:`Trainer` and run it to ``config.steps`` (the one-call API)."""
    trainer = Trainer(config, resume=resume, overwrite=overwrite, data=data)
    try:
        return trainer.fit()
    finally:
        trainer.close()


__all__ = ["NonFiniteError", "Trainer", "resolve_amp", "sample_images", "train", "warmup_lr"]
