"""The image trainer: Algorithm 1 of Ho et al. (2020) at scale, with a run that is never lost.

Each step draws x_0 from the data, t ~ Uniform({1, ..., T}) and ε ~ N(0, I), and takes an Adam
step on ∇_θ ‖ε − ε_θ(√ᾱ_t x_0 + √(1−ᾱ_t) ε, t)‖² (Algorithm 1; the loss is
:func:`minidiff.losses.training_losses`). That step is :meth:`Trainer.train_step`; :meth:`Trainer.fit`
calls it in a loop, then, in order, the finite check, the log row, the sample grid and the
checkpoint, each a small helper (the finite guard, log.csv and the clock are in
:mod:`minidiff.training.bookkeeping`, the stop on a signal in :mod:`minidiff.training.signals`).
Around it: the preset's recipe (:class:`TrainConfig`; the paper's for ``cifar10``), an EMA of the
weights with a decay warm-up, AMP, ``channels_last``, the fast
defaults of :mod:`minidiff.training.speed` (``torch.compile`` of the whole loss and more, on for CUDA),
DDP, a CSV log, periodic sample grids, atomic checkpoints with exact resume, a
final checkpoint on Ctrl-C or SIGTERM (pre-emption), a refusal to start a new run over an old one,
and a guard that stops at the first log step after a non-finite loss or gradient, naming that step.
Between log steps a single-process run makes no host synchronization (the finite flag stays on the
device); under DDP the ranks' agreement on a stop signal reads one flag per step.
Chapter "Training on images".
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ..data.images import ImageBatcher, ImageData, load_dataset, save_image_grid
from ..losses import training_losses
from ..schedules import get_schedule
from .bookkeeping import FiniteGuard, NonFiniteError, RunClock, RunLog, pace_message
from .checkpoint import (
    CheckpointError,
    check_run_dir,
    cuda_rng_state,
    load_checkpoint,
    remove_run,
    save_numbered,
    set_cuda_rng_state,
)
from .config import TrainConfig, build_model, config_mismatch, length_warnings, net_kwargs, warmup_steps
from .distributed import DistInfo, all_reduce_mean, barrier, cleanup, gather_objects, init_distributed, max_over_ranks
from .ema import EMA
from .optim import resolve_amp, warmup_lr
from .sampling import sample_images
from .signals import install_stop_handlers, restore_handlers
from .speed import backend_settings, compiled, resolve_speed


def seeded_model(config: TrainConfig, rank: int = 0):
    """The network of ``config`` with weights from ``config.seed``, and the dropout stream seeded (seed once).

    Every rank builds identical initial weights (the same seed), so DDP's broadcast changes nothing;
    the global RNG that dropout draws from then continues on rank 0, as in a single process, and is
    re-seeded with seed + rank on the other ranks, so their dropout masks differ. The data order, t
    and ε come from their own generators (see :class:`Trainer`).
    """
    torch.manual_seed(config.seed)
    model = build_model(config)
    if rank:
        torch.manual_seed(config.seed + rank)
    return model


class Trainer:
    """Trains the U-Net of ``config`` on ``config.data``; ``fit()`` runs to ``config.steps``.

    ``resume=True`` continues from ``<out>/last.pt`` (if it exists) after checking that the
    run-defining fields of its config equal this config's. Without it, a folder that already holds
    a run (``last.pt`` or ``ckpt-*.pt``) is refused with a ValueError, unless ``overwrite=True``,
    which deletes that run's checkpoints, ``log.csv`` and sample grids (see
    :func:`~minidiff.training.checkpoint.check_run_dir`).
    ``data`` replaces the named data set (tests use small arrays).

    The streams of randomness: weights from ``seed`` on every rank and dropout per rank
    (:func:`seeded_model`); the data order from ``seed`` and t, ε from ``seed + 1``, drawn for the
    whole global batch on every rank, each keeping its slice, so that W processes take the steps of one.
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
        self._build_model_and_optimizer()
        self._build_data(data)
        self.step, self._saved_step, self.clock = 0, -1, RunClock()
        self.last_fit_seconds = 0.0
        self.warmup = warmup_steps(c)
        if resume_state is not None:
            self.load(self.out / "last.pt", resume_state)
        self.warnings = length_warnings(c, self.warmup)
        self._guard = FiniteGuard(self.device)
        self._grad_norm = torch.zeros((), device=self.device)
        self._stop = False
        self.stopped_by: int | None = None  # the signal number that ended the last fit() early, if any
        if overwrite and self.dist.is_main:  # everything above succeeded: only now delete the old run
            remove_run(self.out)

    def _build_model_and_optimizer(self) -> None:
        """Network (seeded, on device, DDP-wrapped), the loss (compiled on CUDA), then the EMA, Adam, scaler, schedule.

        The EMA, the optimizer and the checkpoints hold the un-compiled :attr:`model`; :attr:`net` is what
        the loss calls (DDP-wrapped, or compiled with ``compile_scope="network"``).
        """
        c = self.config
        self.amp_dtype, use_scaler = resolve_amp(c.amp, self.device)
        self.speed = resolve_speed(c, self.device)
        self.model = seeded_model(c, self.dist.rank)
        self.channels_last = c.channels_last and self.device.type == "cuda"
        self.model.to(self.device, memory_format=torch.channels_last if self.channels_last else torch.preserve_format)
        net = self.model
        if self.dist.distributed:  # DDP broadcasts rank 0's weights; they are identical anyway (same seed)
            from torch.nn.parallel import DistributedDataParallel as DDP

            net = DDP(net, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                      gradient_as_bucket_view=self.speed.ddp_bucket_view)
        self.net, self._loss_fn = net, self._network_loss
        if self.speed.compile and self.speed.compile_scope == "network":
            self.net = compiled(net, self.speed)
        elif self.speed.compile:
            self._loss_fn = compiled(self._network_loss, self.speed)
        self.ema = EMA(self.model, c.ema_decay, warmup=c.ema_warmup)  # after the broadcast: a copy of the replicas
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=c.lr, betas=(c.adam_beta1, c.adam_beta2),
                                          eps=c.adam_eps, fused=(self.device.type == "cuda") or None)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=use_scaler)
        self.schedule = get_schedule(c.schedule, c.T).to(self.device)

    def _build_data(self, data: ImageData | None) -> None:
        """The uint8 images on the device and the batch pipeline (the main process downloads first)."""
        from ..nets.presets import get_preset

        c = self.config
        if data is None:
            if not self.dist.is_main:
                barrier(self.dist)
            data = load_dataset(c.data, root=c.data_dir, offline=c.offline)
            if self.dist.is_main:
                barrier(self.dist)
            expected = get_preset(c.preset).image_shape
            if data.image_shape != expected:
                raise ValueError(f"preset {c.preset!r} is for images {expected}, data {c.data!r} has "
                                 f"{data.image_shape}")
        self.data = data
        flip = data.flip if c.flip is None else c.flip
        self.batcher = ImageBatcher(data.images, data.labels if c.class_conditional else None, c.batch_size,
                                    flip=flip, device=self.device, seed=c.seed, rank=self.dist.rank,
                                    world_size=self.dist.world_size)
        self.noise_gen = torch.Generator(device=self.device).manual_seed(c.seed + 1)

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (collective in DDP: every rank must call it)."""
        cpu_states = gather_objects(torch.get_rng_state(), self.dist)
        cuda_states = gather_objects(cuda_rng_state(self.device), self.dist)
        return {
            "step": self.step, "config": self.config.to_dict(), "net": net_kwargs(self.config),
            "model": self.model.state_dict(), "ema": self.ema.state_dict(), "ema_updates": self.ema.num_updates,
            "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
            "warmup": self.warmup, "elapsed_s": self.elapsed(),
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
            self.ema.load_state_dict(state["ema"], state.get("ema_updates", state["step"]))
            self.optimizer.load_state_dict(state["optimizer"])
            if state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])
            rng = state["rng"]
            self.batcher.load_state_dict(rng["data"])
            self.noise_gen.set_state(rng["noise"].cpu())
        except (KeyError, RuntimeError, ValueError) as e:
            saved = state.get("config", {}).get("device", "?")
            hint = ("" if self.noise_gen.get_state().numel() == state["rng"]["noise"].numel() else
                    f" (its random streams are of another kind of device than {self.device.type}: it was "
                    f"trained with --device {saved}; resume it on that kind of device)")
            raise CheckpointError(f"{path} could not be restored: {type(e).__name__}: "
                                  f"{str(e).splitlines()[0]}{hint}") from e
        self.step = self._saved_step = int(state["step"])
        self.warmup = int(state.get("warmup", self.warmup))  # the run's own warm-up, whatever --steps is now
        self.clock.before = float(state.get("elapsed_s", 0.0))
        cpu, cuda = rng["cpu"], rng.get("cuda", [])
        if len(cpu) == self.dist.world_size:  # same number of processes: each rank continues its own stream
            torch.set_rng_state(cpu[self.dist.rank].cpu())
            if len(cuda) == self.dist.world_size:
                set_cuda_rng_state(cuda[self.dist.rank], self.device)
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

    def elapsed(self) -> float:
        """Training seconds of the whole run, across resumes (the ``elapsed_s`` column of log.csv)."""
        return self.clock.elapsed()

    # ---------------------------------------------------------------- one step of Algorithm 1
    def _loss(self, x0: torch.Tensor, y: torch.Tensor | None, part: slice) -> torch.Tensor:
        """L_simple (Eq. 14, or the configured loss) on this rank's slice; t and ε drawn for the global batch.

        t, ε and the class dropout are drawn here, in eager mode, from :attr:`noise_gen`; the rest is
        :meth:`_network_loss`, compiled whole when ``compile_scope="loss"``.
        """
        c, B = self.config, self.config.batch_size
        t = torch.randint(1, c.T + 1, (B,), device=self.device, generator=self.noise_gen)[part]
        noise = torch.randn((B, *x0.shape[1:]), device=self.device, generator=self.noise_gen)[part]
        if c.class_conditional:
            drop = torch.rand(B, device=self.device, generator=self.noise_gen)[part] < c.class_dropout
            y = torch.where(drop, torch.full_like(y, self.model.num_classes), y)
        return self._loss_fn(x0, t, noise, y)

    def _network_loss(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor,
                      y: torch.Tensor | None) -> torch.Tensor:
        """The batch mean of the loss at given t and ε (Eq. 14): channels_last, autocast, the network, the loss."""
        c = self.config
        if self.channels_last:
            x0 = x0.contiguous(memory_format=torch.channels_last)
            noise = noise.contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype else \
            contextlib.nullcontext()
        with autocast:
            return training_losses(self.net, x0, self.schedule, t=t, noise=noise, loss=c.loss,
                                   parameterization=c.parameterization, variance=c.variance,
                                   model_kwargs=None if y is None else {"y": y}).mean()

    def train_step(self) -> torch.Tensor:
        """One optimizer step of Algorithm 1; returns the loss, a 0-dim tensor on the device, without a host sync.

        Batch from the on-device uint8 pipeline, forward and loss under AMP, backward, gradient clipping
        (no clipping work when ``grad_clip`` is 0), Adam at the warm-up learning rate, the EMA update,
        and the on-device finite flag. Advances :attr:`step`.
        """
        c = self.config
        x0, y = self.batcher.next()
        part = slice(self.dist.rank * x0.shape[0], (self.dist.rank + 1) * x0.shape[0])
        for group in self.optimizer.param_groups:
            group["lr"] = warmup_lr(self.step, c.lr, self.warmup)
        with backend_settings(self.speed):  # cudnn.benchmark, TF32 matmuls: on CUDA, for this step only
            loss = self._loss(x0, y, part)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if c.grad_clip > 0:
                self.scaler.unscale_(self.optimizer)
                self._grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip,
                                                                 foreach=True)
            self.scaler.step(self.optimizer)  # skipped by the scaler after an fp16 overflow
        self.scaler.update()
        self.ema.update(self.model)
        self.step += 1
        loss = loss.detach()
        # the gradient counts only where it is clipped (so measured) and not fp16 (whose overflows the scaler skips)
        check_grad = not self.scaler.is_enabled() and c.grad_clip > 0
        self._guard.update(self.step, loss, self._grad_norm, check_grad)
        return loss

    # ---------------------------------------------------------------- the helpers fit() calls
    def check_finite(self) -> None:
        """Raise :class:`NonFiniteError` if any step so far was non-finite (reads the device flag: one sync).

        Under DDP every rank stops when any rank saw a non-finite value (an all-reduce of the flag), so
        the others never wait for it in the next collective.
        """
        if self.dist.distributed:
            bad_anywhere = max_over_ranks(0.0 if bool(self._guard.finite) else 1.0, self.dist)
            if bool(self._guard.finite) and bool(bad_anywhere):
                raise NonFiniteError(f"another process of this run saw a non-finite training signal by step "
                                     f"{self.step}; stopped without saving, so the last good checkpoint in "
                                     f"{self.out} is untouched (that process's message names the step and causes)")
        self._guard.check(out=self.out, lr=self.config.lr, amp_dtype=self.amp_dtype, grad_clip=self.config.grad_clip)

    def _sample_grid(self) -> None:
        c = self.config
        images = sample_images(self.ema.model, c, c.sample_n, sampler=c.sample_sampler, steps=c.sample_steps,
                               seed=c.seed, device=self.device)
        (self.out / "samples").mkdir(parents=True, exist_ok=True)
        save_image_grid(images, self.out / "samples" / f"step-{self.step:08d}.png")

    def _log(self, log: RunLog | None, loss_sum: torch.Tensor, n: int, since: tuple[int, float]) -> float:
        """Write one log.csv row (mean loss over the last ``n`` steps, over all ranks); returns that loss."""
        c, now = self.config, time.perf_counter()
        loss = all_reduce_mean(loss_sum / n, self.dist).item()
        ips = (self.step - since[0]) * c.batch_size / max(now - since[1], 1e-9)
        if log is not None:
            grad_norm = f"{self._grad_norm.item():.4f}" if c.grad_clip > 0 else ""
            log.write({"step": self.step, "loss": f"{loss:.6f}", "grad_norm": grad_norm,
                       "lr": f"{warmup_lr(self.step - 1, c.lr, self.warmup):.3e}",
                       "images_per_s": f"{ips:.1f}", "elapsed_s": f"{self.elapsed():.1f}"})
        return loss

    def _report_pace(self, since: tuple[int, float]) -> None:
        """Print s/step and the projected time to ``config.steps``, from the steps since ``since`` (one sync)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        per_step = (time.perf_counter() - since[1]) / max(self.step - since[0], 1)
        print(pace_message(per_step, self.config.steps - self.step, self.device, self.config.preset),
              file=sys.stderr, flush=True)

    def _request_stop(self, signum: int) -> bool:
        """The first SIGINT or SIGTERM: finish the current step, save and return (True); a second one: False."""
        if self._stop:
            return False
        self._stop = True
        self.stopped_by = signum
        return True

    def _stop_agreed(self) -> bool:
        """Whether to stop after this step. Under DDP the ranks agree one step late (an all-reduce MAX of the
        signal number, read the next step), so that their collective checkpoint cannot deadlock."""
        if not self.dist.distributed:
            return self._stop
        signum = 0 if self._stop_flag is None else int(self._stop_flag.item())
        self._stop_flag = max_over_ranks(self.stopped_by or 0, self.dist)
        if signum:
            self.stopped_by = self.stopped_by or signum
        return bool(signum)

    # ---------------------------------------------------------------- the loop
    @contextlib.contextmanager
    def _fit_session(self):
        """Around the loop: run folder, log.csv, signal handlers, progress bar and the clock; yields (log, bar)."""
        from tqdm.auto import tqdm

        c, main = self.config, self.dist.is_main
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
        log = RunLog(self.out / "log.csv", self.step) if main else None
        self._stop, self.stopped_by, self._stop_flag = False, None, None
        old_handlers = install_stop_handlers(self._request_stop)
        bar = tqdm(total=c.steps, initial=self.step, disable=not (c.progress and main), desc="training",
                   unit="it", dynamic_ncols=True)
        self.model.train()
        self.clock.begin()
        try:
            yield log, bar
        finally:
            bar.close()
            if log is not None:
                log.close()
            restore_handlers(old_handlers)
            self.last_fit_seconds = self.clock.end()

    def fit(self) -> dict[str, float]:
        """Train until ``config.steps``; checkpoint every ``ckpt_every`` steps, at the end, and on SIGINT/SIGTERM.

        The loop reads like Algorithm 1 plus bookkeeping: :meth:`train_step`, then at log steps the finite
        check and a log row, then sample grids and checkpoints. A signal (Ctrl-C, or the SIGTERM of a
        pre-empting scheduler) finishes the current step, saves a checkpoint there and returns;
        :attr:`stopped_by` then holds the signal number. Raises :class:`NonFiniteError` at the first log step
        after a non-finite loss or gradient, naming that step, without saving. Returns {"step", "loss", "seconds"}.
        """
        c, main = self.config, self.dist.is_main
        with self._fit_session() as (log, bar):
            first, since = self.step, (self.step, time.perf_counter())
            loss_sum, n_sum, last_loss = None, 0, float("nan")
            while self.step < c.steps:
                loss = self.train_step()
                loss_sum, n_sum = (loss if loss_sum is None else loss_sum + loss), n_sum + 1
                bar.update(1)
                if self.step == first + 1:  # time from here: the first step includes one-off set-up
                    since = (self.step, time.perf_counter())
                if self.step == first + 4 and main and c.steps - self.step > 10:
                    self._report_pace(since)
                due_ckpt = self.step % c.ckpt_every == 0
                due_sample = c.sample_every and self.step % c.sample_every == 0
                if self.step % c.log_every == 0 or self.step == c.steps or due_ckpt or due_sample:
                    self.check_finite()  # before anything is written from these weights
                    last_loss = self._log(log, loss_sum, n_sum, since)
                    bar.set_postfix(loss=f"{last_loss:.4f}")
                    loss_sum, n_sum, since = None, 0, (self.step, time.perf_counter())
                if due_sample and main:
                    self._sample_grid()
                if due_ckpt:
                    self.save()
                if self._stop_agreed():
                    break
            self.check_finite()
            if loss_sum is not None:  # steps since the last log row (e.g. after Ctrl-C)
                last_loss = all_reduce_mean(loss_sum / n_sum, self.dist).item()
            if self._saved_step != self.step:
                self.save()  # at exit (the end, or a signal at a step boundary)
        return {"step": self.step, "loss": last_loss, "seconds": self.last_fit_seconds}

    def close(self) -> None:
        cleanup(self.dist)


def train(config: TrainConfig, *, resume: bool = False, overwrite: bool = False,
          data: ImageData | None = None) -> dict[str, float]:
    """Build a :class:`Trainer` and run it to ``config.steps`` (the one-call API); warnings go to ``warnings``."""
    import warnings

    trainer = Trainer(config, resume=resume, overwrite=overwrite, data=data)
    for message in trainer.warnings:
        warnings.warn(message, stacklevel=2)
    try:
        return trainer.fit()
    finally:
        trainer.close()


__all__ = ["NonFiniteError", "Trainer", "resolve_amp", "sample_images", "seeded_model", "train", "warmup_lr"]
