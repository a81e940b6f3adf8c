"""Training: a minimal in-memory loop (Part I) and the image trainer (Part II)."""

from .checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint, save_checkpoint
from .config import RUN_FIELDS, TrainConfig, build_model
from .ema import EMA
from .fit import fit
from .trainer import NonFiniteError, Trainer, sample_images, train

__all__ = ["EMA", "RUN_FIELDS", "CheckpointError", "NonFiniteError", "TrainConfig", "Trainer", "build_model", "fit",
           "load_checkpoint", "model_from_checkpoint", "sample_images", "save_checkpoint", "train"]
