"""minidiff: Denoising Diffusion Probabilistic Models (Ho, Jain & Abbeel 2020) from scratch.

The companion package of the minidiff book. Every function names the paper equation it implements.
"""

from .data import TOYS, make_toy, toy_mixture
from .exact import ExactEps, GaussianMixture, gaussian_eps_model, ideal_denoiser
from .forward import q_mean_variance, q_posterior_mean_variance, q_sample, q_step_sample
from .losses import (
    continuous_gaussian_log_likelihood,
    discretized_gaussian_log_likelihood,
    negative_elbo,
    normal_kl,
    prior_kl,
    training_losses,
    vlb_term,
)
from .nets import MLPDenoiser, timestep_embedding
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
from .training import fit

__version__ = "0.1.0"

# Subpackages with heavy dependencies (scikit-learn, matplotlib, ipywidgets) load on first use,
# so `import minidiff` stays fast: `minidiff.metrics`, `minidiff.plotting`, `minidiff.widgets`, ...
_LAZY_SUBMODULES = ("metrics", "plotting", "widgets", "nets", "data", "training", "cli")


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "PARAMETERIZATIONS", "SAMPLERS", "SCHEDULES", "SPACINGS", "TOYS", "VARIANCES",
    "ExactEps", "GaussianMixture", "MLPDenoiser", "ReverseStep", "SampleState", "Schedule",
    "continuous_gaussian_log_likelihood", "discretized_gaussian_log_likelihood", "eps_from_x0",
    "extract", "fit", "from_x0_eps", "gaussian_eps_model", "get_schedule", "ideal_denoiser",
    "make_betas", "make_toy", "mu_from_x0", "negative_elbo", "normal_kl", "p_mean_variance", "pick",
    "prior_kl", "q_mean_variance", "q_posterior_mean_variance", "q_sample", "q_step_sample",
    "respace_timesteps", "sample", "sample_loop", "smoke", "timestep_embedding", "to_eps", "to_x0",
    "toy_mixture", "training_losses", "v_from_x0_eps", "vlb_term", "x0_from_eps", "x0_from_mu",
    "x0_from_v",
]
