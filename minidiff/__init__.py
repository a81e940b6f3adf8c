"""minidiff: Denoising Diffusion Probabilistic Models (Ho, Jain & Abbeel 2020) from scratch.

The companion package of the minidiff book. Every function names the paper equation it implements.
Time is the paper's everywhere: t = 1, ..., T (t = 0 is the data); see the book page "Notation".

``minidiff.__all__`` holds what a reader of the book calls (``md.q_sample``, ``md.sample``, ...).
Everything else lives in its module and is reached through it, e.g. ``md.parameterization.x0_from_eps``,
``md.losses.normal_kl``, ``md.schedules.extract``, ``md.smoke.pick``, ``md.training.TrainConfig``.
"""

# The modules themselves, so that `md.<module>.<name>` reaches everything outside __all__.
from . import (  # noqa: F401
    data,
    ddim_inversion,
    exact,
    forward,
    gpu,
    interpolation,
    langevin,
    losses,
    nets,
    parameterization,
    progressive,
    reverse,
    samplers,
    schedules,
    smoke,
    training,
)
from .data import make_toy, toy_mixture
from .ddim_inversion import ddim_encode, slerp
from .exact import ExactEps, GaussianMixture, gaussian_eps_model, ideal_denoiser
from .forward import q_mean_variance, q_posterior_mean_variance, q_sample, q_step_sample
from .gpu import require_gpu
from .langevin import annealed_langevin, annealed_langevin_loop, score_from_eps
from .losses import negative_elbo, prior_kl, training_losses, vlb_term
from .nets import MLPDenoiser, UNet
from .parameterization import PARAMETERIZATIONS, from_x0_eps, to_eps, to_x0
from .reverse import p_mean_variance
from .samplers import SampleState, respace_timesteps, sample, sample_loop
from .schedules import Schedule, get_schedule
from .training import fit, train

__version__ = "0.1.0"

# Subpackages with heavy dependencies (scikit-learn, matplotlib, ipywidgets) load on first use, so
# `import minidiff` stays fast: `minidiff.metrics`, `minidiff.plotting`, `minidiff.widgets` and `minidiff.cli`.
# (The modules imported above need only torch and numpy; scikit-learn and tqdm are imported inside the
# functions that use them.)
_LAZY_SUBMODULES = ("metrics", "plotting", "widgets", "cli")


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# 35 names, by chapter: schedules and the forward process; parameterizations and the reverse process;
# losses; samplers, DDIM inversion and Langevin; ground truth; data; networks; training; the GPU check.
__all__ = [
    "Schedule", "get_schedule", "q_step_sample", "q_sample", "q_mean_variance", "q_posterior_mean_variance",
    "PARAMETERIZATIONS", "to_x0", "to_eps", "from_x0_eps", "p_mean_variance",
    "training_losses", "vlb_term", "negative_elbo", "prior_kl",
    "sample", "sample_loop", "SampleState", "respace_timesteps", "ddim_encode", "slerp",
    "score_from_eps", "annealed_langevin", "annealed_langevin_loop",
    "GaussianMixture", "ExactEps", "gaussian_eps_model", "ideal_denoiser",
    "make_toy", "toy_mixture", "MLPDenoiser", "UNet", "fit", "train", "require_gpu",
]
