"""The training configuration: the paper's recipe by default (Ho et al. 2020, Sec. 4 and Appendix B).

Adam at 2e-4, batch 128, a linear learning-rate warm-up over 5,000 steps, gradient clipping at
norm 1, an EMA of the weights with decay 0.9999, T = 1000 with the linear β schedule, L_simple
(Eq. 14) with ε-prediction, dropout 0.1 on CIFAR-10, random horizontal flips on CIFAR-10.
Chapter "Training on images".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from .._checks import check_choice
from ..data.images import DATASETS
from ..losses import LOSSES
from ..nets.presets import PRESETS, build_unet, get_preset
from ..parameterization import PARAMETERIZATIONS
from ..reverse import VARIANCES
from ..samplers import SAMPLERS
from ..schedules import SCHEDULES

AMP_MODES = ("auto", "bf16", "fp16", "off")

# Fields that define the run: a checkpoint can only be resumed under the same values. The others
# (how long, where, how fast, how often to log) may change between a run and its resumption.
RUN_FIELDS = ("preset", "data", "batch_size", "lr", "warmup", "grad_clip", "ema_decay", "adam_beta1", "adam_beta2",
              "adam_eps", "dropout", "schedule", "T", "loss", "parameterization", "variance", "class_conditional",
              "class_dropout", "flip", "seed")


@dataclass
class TrainConfig:
    """Every knob of :class:`minidiff.training.Trainer`; the defaults are the paper's CIFAR-10 run."""

    preset: str = "cifar10"
    data: str | None = None  # None: the preset's data set (see minidiff.data.DATASETS)
    steps: int = 800_000  # the paper trains CIFAR-10 for 800k steps
    batch_size: int = 128  # global batch, split over DDP processes
    lr: float = 2e-4
    warmup: int = 5000  # linear warm-up: lr · min(step / warmup, 1), as in the official code
    grad_clip: float = 1.0  # global-norm clipping; 0 turns it off
    ema_decay: float = 0.9999
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    dropout: float | None = None  # None: the preset's (0.1 for cifar10)
    schedule: str = "linear"
    T: int = 1000
    loss: str = "simple"  # Eq. 14
    parameterization: str = "eps"
    variance: str = "fixed_large"  # σ_t² = β_t, the official CIFAR-10 sampler; learned_range doubles the outputs
    class_conditional: bool = False  # add a class embedding (with a null class for classifier-free guidance)
    class_dropout: float = 0.1  # probability of training on the null class, when class-conditional
    flip: bool | None = None  # None: the data set's default (flips for CIFAR-10)
    seed: int = 0
    amp: str = "auto"  # auto: bf16 on GPUs that support it, else fp16 with a GradScaler; off on CPU
    channels_last: bool = True  # used on CUDA only
    compile: bool = False  # torch.compile the training forward
    device: str = "auto"
    out: str = "runs/run"
    data_dir: str | None = None  # data cache (default: $MINIDIFF_DATA or ~/.cache/minidiff)
    offline: bool = False  # never download
    ckpt_every: int = 5000
    keep: int = 3  # numbered checkpoints kept besides last.pt
    log_every: int = 100
    sample_every: int = 5000  # 0: no periodic sample grids
    sample_n: int = 64
    sample_sampler: str = "ddim"
    sample_steps: int = 50
    progress: bool = True

    def __post_init__(self) -> None:
        check_choice("preset", self.preset, PRESETS)
        if self.data is None:
            self.data = get_preset(self.preset).dataset
        check_choice("data", self.data, DATASETS)
        check_choice("amp", self.amp, AMP_MODES)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("loss", self.loss, LOSSES)
        check_choice("parameterization", self.parameterization, PARAMETERIZATIONS)
        check_choice("variance", self.variance, VARIANCES)
        check_choice("sample_sampler", self.sample_sampler, SAMPLERS)
        for name in ("steps", "batch_size", "T", "ckpt_every", "keep", "log_every", "sample_n", "sample_steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {name} = {v!r}")
        for name in ("warmup", "sample_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {name} = {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got lr = {self.lr}")
        if self.grad_clip < 0:
            raise ValueError(f"grad_clip must be >= 0 (0 turns clipping off), got grad_clip = {self.grad_clip}")
        for name in ("ema_decay", "class_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {name} = {getattr(self, name)}")
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got dropout = {self.dropout}")
        if self.variance == "learned_range" and self.loss == "simple":
            raise ValueError("variance='learned_range' needs loss='hybrid' or 'vlb'; L_simple cannot train it")

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
        for key in ("data", "dropout", "flip", "data_dir"):
            d.setdefault(key, None)
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


def build_model(config: TrainConfig | dict[str, Any]):
    """The :class:`~minidiff.nets.UNet` a config trains: its preset with the config's overrides."""
    c = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    overrides: dict[str, Any] = {}
    if c.dropout is not None:
        overrides["dropout"] = c.dropout
    if c.variance == "learned_range":
        overrides["learn_variance"] = True
    if c.class_conditional:
        overrides["num_classes"] = 2 if c.data == "cifar10-offline" else 10
    return build_unet(c.preset, **overrides)
