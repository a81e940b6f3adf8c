"""minidiff: Denoising Diffusion Probabilistic Models (Ho, Jain & Abbeel 2020) from scratch.

The companion package of the minidiff book. Every function names the paper equation it implements.
"""

from .data import TOYS, load_dataset, make_toy, save_image_grid, toy_mixture
from .ddim_inversion import ddim_encode, ddim_encode_loop, slerp
from .exact import ExactEps, GaussianMixture, gaussian_eps_model, ideal_denoiser
from .forward import q_mean_variance, q_posterior_mean_variance, q_sample, q_step_sample
from .gpu import NoGPUError, require_gpu
from .langevin import annealed_langevin, annealed_langevin_loop, langevin_step_sizes, score_from_eps
from .losses import (
    continuous_gaussian_log_likelihood,
    discretized_gaussian_log_likelihood,
    negative_elbo,
    normal_kl,
    prior_kl,
    training_losses,
    vlb_term,
)
from .nets import MLPDenoiser, UNet, build_unet, guided, timestep_embedding
from .parameterization import (
    PARAMETERIZATIONS,
    eps_from_x0,
    from_x0_eps,
    mu_from_x0,
    to_eps,
    to_x0,
    v_from_x0_eps,
    x0_from_eps,
    x0_from_mu,
    x0_from_v,
)
from .reverse import VARIANCES, ReverseStep, p_mean_variance
from .samplers import SAMPLERS, SPACINGS, SampleState, respace_timesteps, sample, sample_loop
from .schedules import SCHEDULES, Schedule, extract, get_schedule, make_betas
from .smoke import pick, smoke
from .training import TrainConfig, Trainer, fit, train

__version__ = "0.1.0"

# Subpackages with heavy dependencies (scikit-learn, matplotlib, ipywidgets) load on first use, so
# `import minidiff` stays fast: `minidiff.metrics`, `minidiff.plotting`, `minidiff.widgets` and `minidiff.cli`.
# (`nets`, `data` and `training` are imported above; they need only torch and numpy, and scikit-learn and
# tqdm are imported inside the functions that use them.)
_LAZY_SUBMODULES = ("metrics", "plotting", "widgets", "cli")


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "PARAMETERIZATIONS", "SAMPLERS", "SCHEDULES", "SPACINGS", "TOYS", "VARIANCES", "annealed_langevin",
    "annealed_langevin_loop", "build_unet", "continuous_gaussian_log_likelihood", "ddim_encode", "ddim_encode_loop",
    "discretized_gaussian_log_likelihood", "eps_from_x0", "ExactEps", "extract", "fit", "from_x0_eps",
    "gaussian_eps_model", "GaussianMixture", "get_schedule", "guided", "ideal_denoiser", "langevin_step_sizes",
    "load_dataset", "make_betas", "make_toy", "MLPDenoiser", "mu_from_x0", "negative_elbo", "NoGPUError", "normal_kl",
    "p_mean_variance", "pick", "prior_kl", "q_mean_variance", "q_posterior_mean_variance", "q_sample",
    "q_step_sample", "require_gpu", "respace_timesteps", "ReverseStep", "sample", "sample_loop", "SampleState",
    "save_image_grid",
    "Schedule", "score_from_eps", "slerp", "smoke", "timestep_embedding", "to_eps", "to_x0", "toy_mixture", "train",
    "TrainConfig", "Trainer", "training_losses", "UNet", "v_from_x0_eps", "vlb_term", "x0_from_eps", "x0_from_mu",
    "x0_from_v",
]
