"""Noise schedules side by side: ᾱ_t, log-SNR and β_t. Chapter "The forward process"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import torch

from ..schedules import SCHEDULES, get_schedule

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def plot_schedules(names: Sequence[str] = SCHEDULES, T: int = 1000, *, size: float = 3.6) -> Figure:
    """Three panels over t/T for each named schedule: ᾱ_t (Eq. 4's signal weight), log SNR = log ᾱ_t/(1−ᾱ_t),
    and β_t on a log scale. Returns the figure."""
    if not names:
        raise ValueError("names must list at least one schedule, got an empty sequence")
    fig, (a_ax, snr_ax, b_ax) = plt.subplots(1, 3, figsize=(3 * size, size))
    ts = torch.arange(1, T + 1)  # the paper's t = 1..T (the arrays' entry 0 is t = 0, the data)
    for name in names:
        sch = get_schedule(name, T)
        a_ax.plot(ts / T, sch.alpha_bars[ts], label=name)
        snr_ax.plot(ts / T, sch.log_snr[ts], label=name)
        b_ax.plot(ts / T, sch.betas[ts], label=name)
    a_ax.set(title=r"signal kept: $\bar\alpha_t$", xlabel="$t/T$", ylabel=r"$\bar\alpha_t$")
    snr_ax.set(title=r"log SNR $= \log \bar\alpha_t/(1-\bar\alpha_t)$", xlabel="$t/T$", ylabel="log SNR")
    b_ax.set(title=r"noise added per step: $\beta_t$", xlabel="$t/T$", ylabel=r"$\beta_t$", yscale="log")
    a_ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
