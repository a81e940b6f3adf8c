"""Neural networks: the Part I MLP and (Part II) the paper's U-Net and its presets."""

from .embedding import fourier_features, timestep_embedding
from .mlp import MLPDenoiser
from .presets import PRESETS, Preset, build_unet, get_preset
from .unet import UNet, count_parameters, from_diffusers_state_dict, guided

__all__ = ["PRESETS", "MLPDenoiser", "Preset", "UNet", "build_unet", "count_parameters", "from_diffusers_state_dict",
           "fourier_features", "get_preset", "guided", "timestep_embedding"]
