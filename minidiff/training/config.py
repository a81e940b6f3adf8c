"""The training configuration: the paper's recipe by default (Ho et al. 2020, Sec. 4 and Appendix B).

Adam at 2e-4, batch 128, a linear learning-rate warm-up over 5,000 steps, gradient clipping at
norm 1, an EMA of the weights with decay 0.9999, T = 1000 with the linear β schedule, L_simple
(Eq. 14) with ε-prediction, dropout 0.1 on CIFAR-10, random horizontal flips on CIFAR-10.
A preset carries its own budget (steps, batch, lr, warm-up, EMA decay; ``cifar10``: the paper's,
``cpu``: a 30-minute CPU run) and its network; fields left at None take the preset's values. Two
deviations from the paper serve short runs and leave the paper's 800k-step run as it was: the EMA
decay warm-up (:mod:`minidiff.training.ema`) and a learning-rate warm-up of at most a tenth of the
run (:func:`warmup_steps`). Chapter "Training on images".
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .._checks import check_choice
from ..data.images import DATASETS
from ..losses import LOSSES
from ..nets.presets import PRESETS, WIDTH_DEPTH_FIELDS, get_preset, unet_kwargs
from ..parameterization import PARAMETERIZATIONS
from ..reverse import VARIANCES
from ..samplers import SAMPLERS
from ..schedules import SCHEDULES
from .speed import AUTO_FIELDS, COMPILE_BACKENDS, COMPILE_SCOPES

AMP_MODES = ("auto", "bf16", "fp16", "off")

# Fields that define the run: a checkpoint can only be resumed under the same values. The others
# (how long, where, how fast, how often to log) may change between a run and its resumption.
RUN_FIELDS = ("preset", "data", "batch_size", "lr", "warmup", "grad_clip", "ema_decay", "ema_warmup", "adam_beta1",
              "adam_beta2", "adam_eps", "ch", "ch_mult", "num_res_blocks", "attn_resolutions", "dropout", "schedule",
              "T", "loss", "parameterization", "variance", "class_conditional", "class_dropout", "flip", "seed")

# The named choices of the string fields: checked in TrainConfig and listed by ``minidiff train --help``.
CHOICES: dict[str, tuple[str, ...]] = {
    "preset": tuple(PRESETS), "data": DATASETS, "amp": AMP_MODES, "schedule": SCHEDULES, "loss": LOSSES,
    "parameterization": PARAMETERIZATIONS, "variance": VARIANCES, "sample_sampler": SAMPLERS,
    "compile_scope": COMPILE_SCOPES, "compile_backend": COMPILE_BACKENDS,
}
# Integer fields that must be >= 1 (``warmup`` and ``sample_every`` may be 0: off).
POSITIVE_INT_FIELDS = ("steps", "batch_size", "T", "ckpt_every", "keep", "log_every", "sample_n", "sample_steps",
                       "ch", "num_res_blocks")
# Fields whose None means "the preset's value": the training budget (Preset.train) and the network (Preset.unet).
PRESET_TRAIN_FIELDS = ("steps", "batch_size", "lr", "warmup", "ema_decay")
PRESET_FIELDS = PRESET_TRAIN_FIELDS + WIDTH_DEPTH_FIELDS
# The learning-rate warm-up a preset's run gets when ``warmup`` is left at None: at most this share of the run.
WARMUP_SHARE = 10


def knob(default: Any, help: str) -> Any:
    """A TrainConfig field with its one-line ``help`` (the ``minidiff train --help`` text is built from it)."""
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """Every knob of :class:`minidiff.training.Trainer`; the defaults are the paper's CIFAR-10 run.

    Each field is also a ``minidiff train`` flag (``batch_size`` -> ``--batch-size``), with the help
    text given here. The fields of :data:`PRESET_FIELDS` left at None take the preset's value when the
    config is made (``warmup`` excepted: see :func:`warmup_steps`), so that a saved config, and with
    it a checkpoint, holds the network and the budget it was trained with. Ho et al. (2020), Sec. 4
    and Appendix B.
    """

    preset: str = knob("cifar10", "network preset and its training budget (see 'minidiff info --preset NAME')")
    data: str | None = knob(None, "data set (default: the preset's; the -offline stand-ins need no internet)")
    steps: int | None = knob(None, "total optimizer steps (default: the preset's)")
    batch_size: int | None = knob(None, "global batch size, split over DDP processes (default: the preset's)")
    lr: float | None = knob(None, "Adam learning rate (default: the preset's)")
    warmup: int | None = knob(None, "linear learning-rate warm-up steps, lr * min(step / warmup, 1); 0: off "
                              f"(default: the preset's, at most steps // {WARMUP_SHARE})")
    grad_clip: float = knob(1.0, "gradient global-norm clipping (0: off, and no gradient norm in log.csv)")
    ema_decay: float | None = knob(None, "EMA decay d of the weights, the long-run value (default: the preset's)")
    ema_warmup: bool = knob(True, "EMA decay warm-up: step n uses min(d, (1 + n) / (10 + n)), so that a short run's "
                            "EMA does not keep the initial weights")
    adam_beta1: float = knob(0.9, "Adam beta1")
    adam_beta2: float = knob(0.999, "Adam beta2")
    adam_eps: float = knob(1e-8, "Adam epsilon")
    ch: int | None = knob(None, "U-Net base channels (default: the preset's)")
    ch_mult: tuple[int, ...] | None = knob(None, "U-Net channel multiplier per level, comma-separated, e.g. 1,2,2 "
                                           "(default: the preset's)")
    num_res_blocks: int | None = knob(None, "U-Net residual blocks per level (default: the preset's)")
    attn_resolutions: tuple[int, ...] | None = knob(None, "feature-map sizes with self-attention, comma-separated; "
                                                    "'' for none (default: the preset's)")
    dropout: float | None = knob(None, "dropout in the residual blocks (default: the preset's)")
    schedule: str = knob("linear", "beta schedule")
    T: int = knob(1000, "number of diffusion steps T")
    loss: str = knob("simple", "training loss: simple is L_simple (Eq. 14)")
    parameterization: str = knob("eps", "what the network predicts")
    variance: str = knob("fixed_large", "reverse-process variance: fixed_large is sigma_t^2 = beta_t, the official "
                         "CIFAR-10 sampler; learned_range doubles the outputs and needs loss hybrid or vlb")
    class_conditional: bool = knob(False, "condition on labels, with a null class for classifier-free guidance")
    class_dropout: float = knob(0.1, "probability of training on the null class, when class-conditional")
    flip: bool | None = knob(None, "random horizontal flips (default: the data set's, on for the cifar10 ones)")
    seed: int = knob(0, "random seed of the weights, the data order and the noise")
    amp: str = knob("auto", "mixed precision (auto: bf16 on GPUs that support it, else fp16 with a GradScaler; "
                    "off on CPU)")
    channels_last: bool = knob(True, "channels_last memory format (CUDA only)")
    compile: bool | None = knob(None, "torch.compile the training loss (default: auto, on for CUDA, off on CPU; "
                                "--no-compile turns it off)")
    compile_scope: str = knob("loss", "what --compile compiles: loss is the whole function from x_0, t, eps to the "
                              "loss (network + L_simple, one fused graph), network the network alone")
    compile_backend: str = knob("inductor", "torch.compile backend (aot_eager and eager are for debugging: no "
                                "speed-up)")
    cudnn_benchmark: bool | None = knob(None, "torch.backends.cudnn.benchmark during training steps: cuDNN picks "
                                        "the fastest convolution algorithm per shape (default: auto, on for CUDA)")
    tf32_matmul: bool | None = knob(None, "torch.set_float32_matmul_precision('high') during training steps: "
                                    "float32 matmuls on TF32 tensor cores (default: auto, on for CUDA)")
    ddp_bucket_view: bool | None = knob(None, "DDP gradient_as_bucket_view=True: gradients live in the all-reduce "
                                        "buckets, one copy fewer per step (default: auto, on for CUDA)")
    device: str = knob("auto", "auto, cpu, cuda or cuda:N")
    out: str = knob("runs/run", "run directory: checkpoints, log.csv, samples/")
    data_dir: str | None = knob(None, "data cache (default: $MINIDIFF_DATA or ~/.cache/minidiff)")
    offline: bool = knob(False, "never download; fail if the data is not cached")
    ckpt_every: int = knob(5000, "checkpoint every N steps")
    keep: int = knob(3, "numbered checkpoints kept besides last.pt")
    log_every: int = knob(100, "CSV log and progress-bar update every N steps")
    sample_every: int = knob(5000, "sample grid every N steps (0: never)")
    sample_n: int = knob(64, "images in each periodic sample grid")
    sample_sampler: str = knob("ddim", "sampler of the periodic sample grids")
    sample_steps: int = knob(50, "reverse steps of the periodic sample grids")
    progress: bool = knob(True, "show a progress bar")

    def __post_init__(self) -> None:
        check_choice("preset", self.preset, PRESETS)
        self._fill_from_preset()
        for name, valid in CHOICES.items():
            check_choice(name, getattr(self, name), valid)
        for name in POSITIVE_INT_FIELDS:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {name} = {v!r}")
        for name in ("warmup", "sample_every"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise ValueError(f"{name} must be an int >= 0, got {name} = {v!r}")
        for name in AUTO_FIELDS:
            if getattr(self, name) is not None and not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True, False or None (auto: on for CUDA), got {name} = "
                                 f"{getattr(self, name)!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a finite number > 0, got lr = {self.lr}")
        if not (self.grad_clip >= 0 and math.isfinite(self.grad_clip)):
            raise ValueError("grad_clip must be a finite number >= 0 (0 turns clipping off), "
                             f"got grad_clip = {self.grad_clip}")
        for name in ("ema_decay", "class_dropout", "adam_beta1", "adam_beta2", "dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {name} = {getattr(self, name)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be an int in [0, 2**63), got seed = {self.seed!r}")
        if not (self.adam_eps > 0 and math.isfinite(self.adam_eps)):
            raise ValueError(f"adam_eps must be a finite number > 0, got adam_eps = {self.adam_eps}")
        if self.variance == "learned_range" and self.loss == "simple":
            raise ValueError("variance='learned_range' needs loss='hybrid' or 'vlb'; L_simple cannot train it")
        if self.sample_every and self.sample_steps > self.T:
            raise ValueError(f"sample_steps must be at most T = {self.T}, got sample_steps = {self.sample_steps}")
        self._check_network()

    def _fill_from_preset(self) -> None:
        """None fields take the preset's values (``warmup`` stays None: it depends on ``steps``)."""
        preset = get_preset(self.preset)
        if self.data is None:
            self.data = preset.dataset
        for name in PRESET_FIELDS:
            if name != "warmup" and getattr(self, name) is None:
                setattr(self, name, preset.train[name] if name in preset.train else preset.unet[name])
        for name in ("ch_mult", "attn_resolutions"):  # lists from a saved config, tuples in code
            setattr(self, name, tuple(getattr(self, name)))

    def _check_network(self) -> None:
        groups = get_preset(self.preset).unet.get("num_groups", 32)
        if not self.ch_mult or any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in self.ch_mult):
            raise ValueError(f"ch_mult must be one or more ints >= 1, got ch_mult = {self.ch_mult}")
        if any(isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in self.attn_resolutions):
            raise ValueError(f"attn_resolutions must be ints >= 1, got attn_resolutions = {self.attn_resolutions}")
        bad = [self.ch * m for m in self.ch_mult if (self.ch * m) % groups]
        if bad:
            raise ValueError(f"ch * ch_mult must be multiples of the preset's {groups} GroupNorm groups, got "
                             f"ch = {self.ch}, ch_mult = {self.ch_mult} (channels {bad})")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Rebuild a config from :meth:`to_dict` output; unknown keys are an error naming them."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown config fields {unknown}")
        d = dict(d)
        for key in ("data", "flip", "data_dir", *PRESET_FIELDS):
            d.setdefault(key, None)
        d.setdefault("ema_warmup", False)  # configs saved before the EMA warm-up existed ran without it
        return cls(**d)


def config_mismatch(saved: dict[str, Any], current: dict[str, Any]) -> str | None:
    """The first run-defining field (:data:`RUN_FIELDS`) whose values differ, described; None if all match."""
    for name in RUN_FIELDS:
        a, b = saved.get(name), current.get(name)
        if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
            a, b = list(a or ()), list(b or ())
        if a != b:
            return f"{name}: the checkpoint has {a!r}, this run has {b!r}"
    return None


def net_kwargs(config: TrainConfig) -> dict[str, Any]:
    """The :class:`~minidiff.nets.UNet` keyword arguments of a config: its preset with the config's width,
    depth and dropout, doubled outputs for a learned variance, and classes when class-conditional."""
    overrides: dict[str, Any] = {name: getattr(config, name) for name in WIDTH_DEPTH_FIELDS}
    if config.variance == "learned_range":
        overrides["learn_variance"] = True
    if config.class_conditional:
        overrides["num_classes"] = 2 if config.data == "cifar10-offline" else 10
    return unet_kwargs(config.preset, **overrides)


def build_model(config: TrainConfig | dict[str, Any]):
    """The :class:`~minidiff.nets.UNet` a config trains (weights from the global torch RNG)."""
    from ..nets.unet import UNet

    c = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    return UNet(**net_kwargs(c))


def warmup_steps(config: TrainConfig) -> int:
    """The learning-rate warm-up of a run: ``config.warmup`` if set, else min(preset's, steps // 10).

    The rule keeps a short run out of its warm-up for 90 % of its steps, and leaves long runs alone:
    the ``cifar10`` preset at its 800,000 steps gets the paper's 5,000 (Appendix B).
    """
    if config.warmup is not None:
        return config.warmup
    return min(get_preset(config.preset).train["warmup"], config.steps // WARMUP_SHARE)


def length_warnings(config: TrainConfig, warmup: int) -> list[str]:
    """Settings that cannot work at ``config.steps``, each described in one line (empty if none)."""
    out = []
    if warmup >= config.steps:
        out.append(f"warm-up {warmup} >= steps {config.steps}: the learning rate never reaches lr = {config.lr}; "
                   f"pass a smaller --warmup (e.g. {config.steps // WARMUP_SHARE}) or more --steps")
    kept = config.ema_decay ** config.steps
    if not config.ema_warmup and kept > 0.05:
        out.append(f"EMA decay {config.ema_decay} without warm-up: after {config.steps} steps the EMA weights are "
                   f"still {kept:.0%} the initial ones, and samples come from the EMA; use --ema-warmup")
    return out
