"""The training configuration: the paper's recipe by default (Ho et al. 2020, Sec. 4 and Appendix B).

Adam at 2e-4, batch 128, a linear learning-rate warm-up over 5,000 steps, gradient clipping at
norm 1, an EMA of the weights with decay 0.9999, T = 1000 with the linear β schedule, L_simple
(Eq. 14) with ε-prediction, dropout 0.1 on CIFAR-10, random horizontal flips on CIFAR-10.
Chapter "Training on images".
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
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

# The named choices of the string fields: checked in TrainConfig and listed by ``minidiff train --help``.
CHOICES: dict[str, tuple[str, ...]] = {
    "preset": tuple(PRESETS), "data": DATASETS, "amp": AMP_MODES, "schedule": SCHEDULES, "loss": LOSSES,
    "parameterization": PARAMETERIZATIONS, "variance": VARIANCES, "sample_sampler": SAMPLERS,
}
# Integer fields that must be >= 1 (``warmup`` and ``sample_every`` may be 0: off).
POSITIVE_INT_FIELDS = ("steps", "batch_size", "T", "ckpt_every", "keep", "log_every", "sample_n", "sample_steps")


def knob(default: Any, help: str) -> Any:
    """A TrainConfig field with its one-line ``help`` (the ``minidiff train --help`` text is built from it)."""
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """Every knob of :class:`minidiff.training.Trainer`; the defaults are the paper's CIFAR-10 run.

    Each field is also a ``minidiff train`` flag (``batch_size`` -> ``--batch-size``), with the help
    text given here. Ho et al. (2020), Sec. 4 and Appendix B.
    """

    preset: str = knob("cifar10", "network preset")
    data: str | None = knob(None, "data set (default: the preset's; the -offline stand-ins need no internet)")
    steps: int = knob(800_000, "total optimizer steps (the paper trains CIFAR-10 for 800k)")
    batch_size: int = knob(128, "global batch size, split over DDP processes")
    lr: float = knob(2e-4, "Adam learning rate")
    warmup: int = knob(5000, "linear learning-rate warm-up steps, lr * min(step / warmup, 1) (0: off)")
    grad_clip: float = knob(1.0, "gradient global-norm clipping (0: off)")
    ema_decay: float = knob(0.9999, "EMA decay of the weights")
    adam_beta1: float = knob(0.9, "Adam beta1")
    adam_beta2: float = knob(0.999, "Adam beta2")
    adam_eps: float = knob(1e-8, "Adam epsilon")
    dropout: float | None = knob(None, "dropout (default: the preset's, 0.1 for cifar10)")
    schedule: str = knob("linear", "beta schedule")
    T: int = knob(1000, "number of diffusion steps T")
    loss: str = knob("simple", "training loss: simple is L_simple (Eq. 14)")
    parameterization: str = knob("eps", "what the network predicts")
    variance: str = knob("fixed_large", "reverse-process variance: fixed_large is sigma_t^2 = beta_t, the official "
                         "CIFAR-10 sampler; learned_range doubles the outputs and needs loss hybrid or vlb")
    class_conditional: bool = knob(False, "condition on labels, with a null class for classifier-free guidance")
    class_dropout: float = knob(0.1, "probability of training on the null class, when class-conditional")
    flip: bool | None = knob(None, "random horizontal flips (default: the data set's, on for CIFAR-10)")
    seed: int = knob(0, "random seed of the weights, the data order and the noise")
    amp: str = knob("auto", "mixed precision (auto: bf16 on GPUs that support it, else fp16 with a GradScaler; "
                    "off on CPU)")
    channels_last: bool = knob(True, "channels_last memory format (CUDA only)")
    compile: bool = knob(False, "torch.compile the training forward")
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
        if self.data is None:
            check_choice("preset", self.preset, PRESETS)
            self.data = get_preset(self.preset).dataset
        for name, valid in CHOICES.items():
            check_choice(name, getattr(self, name), valid)
        for name in POSITIVE_INT_FIELDS:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {name} = {v!r}")
        for name in ("warmup", "sample_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {name} = {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a finite number > 0, got lr = {self.lr}")
        if not (self.grad_clip >= 0 and math.isfinite(self.grad_clip)):
            raise ValueError("grad_clip must be a finite number >= 0 (0 turns clipping off), "
                             f"got grad_clip = {self.grad_clip}")
        for name in ("ema_decay", "class_dropout", "adam_beta1", "adam_beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {name} = {getattr(self, name)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be an int in [0, 2**63), got seed = {self.seed!r}")
        if not (self.adam_eps > 0 and math.isfinite(self.adam_eps)):
            raise ValueError(f"adam_eps must be a finite number > 0, got adam_eps = {self.adam_eps}")
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got dropout = {self.dropout}")
        if self.variance == "learned_range" and self.loss == "simple":
            raise ValueError("variance='learned_range' needs loss='hybrid' or 'vlb'; L_simple cannot train it")
        if self.sample_every and self.sample_steps > self.T:
            raise ValueError(f"sample_steps must be at most T = {self.T}, got sample_steps = {self.sample_steps}")

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
