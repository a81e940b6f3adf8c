"""Why minimizing KL(data || model) is maximum likelihood (book/why_diffusion.md).

On a discrete distribution p over K values and a one-parameter model family q_θ that does not
contain p: KL(p || q_θ) = −H(p) − E_p[log q_θ] for every θ, so the two differ by a constant that
does not depend on θ and have the same optimum; and the average log-likelihood of samples from p
estimates E_p[log q_θ] within its standard error.
"""

from __future__ import annotations

import numpy as np

K = 8
THETAS = np.linspace(-2.0, 9.0, 221)  # a grid of the family's parameter


def _data_distribution() -> np.ndarray:
    """A lopsided, bimodal p over {0, ..., K-1}: no member of the family below equals it."""
    p = np.array([0.02, 0.10, 0.30, 0.08, 0.05, 0.15, 0.25, 0.05])
    assert p.shape == (K,) and np.isclose(p.sum(), 1.0)
    return p


def _model(theta: float) -> np.ndarray:
    """q_θ: a discretized Gaussian of mean θ and standard deviation 1.5 on {0, ..., K-1}."""
    logits = -0.5 * ((np.arange(K) - theta) / 1.5) ** 2
    q = np.exp(logits - logits.max())
    return q / q.sum()


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) = Σ_k p_k log(p_k / q_k), straight from the definition."""
    return float(np.sum(p * (np.log(p) - np.log(q))))


def test_kl_equals_minus_entropy_minus_expected_log_likelihood_for_every_theta():
    p = _data_distribution()
    entropy = -float(np.sum(p * np.log(p)))
    kls = np.array([_kl(p, _model(th)) for th in THETAS])
    expected_ll = np.array([float(np.sum(p * np.log(_model(th)))) for th in THETAS])
    np.testing.assert_allclose(kls, -entropy - expected_ll, rtol=0, atol=1e-12)
    # The KL changes with θ (the family does not contain p), so the identity is not a constant 0 = 0.
    assert kls.min() > 0.05 and kls.max() - kls.min() > 1.0


def test_argmin_kl_is_argmax_of_the_sample_log_likelihood():
    p = _data_distribution()
    rng = np.random.default_rng(0)
    n = 200_000
    freq = np.bincount(rng.choice(K, size=n, p=p), minlength=K) / n  # the samples, as frequencies
    kls = np.array([_kl(p, _model(th)) for th in THETAS])
    log_q = np.log(np.stack([_model(th) for th in THETAS]))  # (len(THETAS), K)
    avg_ll = log_q @ freq  # (1/n) Σ_i log q_θ(x_i) at every θ
    # The sample average estimates E_p[log q_θ] = −H(p) − KL: within 4 standard errors at every θ.
    entropy = -float(np.sum(p * np.log(p)))
    stderr = np.sqrt(log_q**2 @ freq - avg_ll**2) / np.sqrt(n)
    assert np.all(np.abs(avg_ll - (-entropy - kls)) < 4 * stderr)
    # Maximum likelihood on the samples picks the θ that minimizes the KL, up to one grid step.
    step = THETAS[1] - THETAS[0]
    assert abs(THETAS[np.argmax(avg_ll)] - THETAS[np.argmin(kls)]) <= step + 1e-12
    # ... and that optimum is interior, not an edge of the grid.
    assert 0 < np.argmin(kls) < len(THETAS) - 1
