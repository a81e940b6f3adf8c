"""Neural networks: the Part I MLP and (Part II) the paper's U-Net."""

from .embedding import timestep_embedding
from .mlp import MLPDenoiser

__all__ = ["MLPDenoiser", "timestep_embedding"]
