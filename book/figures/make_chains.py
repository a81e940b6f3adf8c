"""Draw the graphical model of the two chains of a diffusion model: book/figures/chains.svg.

The figure of the chapter "Why diffusion?" (after Fig. 2 of Ho et al. 2020): the nodes
x_T, ..., x_t, x_{t-1}, ..., x_0; the learned reverse steps p_θ(x_{t-1} | x_t) as solid arrows,
the fixed forward steps q(x_t | x_{t-1}) as dashed arrows; under x_0, x_t and x_T, 2,000 points of
the moons toy pushed to that t by the closed-form forward process (linear schedule, T = 1000,
t = 100, seed 0). The SVG is committed; the book build does not run this script. Regenerate with

    PYTHONPATH=. .venv/bin/python book/figures/make_chains.py
"""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Circle, FancyArrowPatch  # noqa: E402

import minidiff as md  # noqa: E402

OUT = pathlib.Path(__file__).with_name("chains.svg")
T, T_MID, N, SEED = 1000, 100, 2000, 0

# (x position, label, t of the thumbnail or None): x_T on the left, as in the paper's Fig. 2.
NODES = [(0.0, r"$x_T$", T), (1.6, r"$\cdots$", None), (3.2, r"$x_t$", T_MID),
         (4.8, r"$x_{t-1}$", None), (6.4, r"$\cdots$", None), (8.0, r"$x_0$", 0)]
R = 0.42  # node radius


def main() -> None:
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    schedule = md.get_schedule("linear", T=T)
    x0 = md.make_toy("moons", N)

    plt.rcParams.update({"svg.hashsalt": "minidiff-chains", "font.size": 13})
    fig = plt.figure(figsize=(9.0, 4.5))
    ax = fig.add_axes((0.02, 0.42, 0.96, 0.56))
    ax.set_xlim(-0.9, 8.9)
    ax.set_ylim(-1.55, 1.35)
    ax.set_aspect("equal")
    ax.axis("off")

    for x, label, _ in NODES:
        if label == r"$\cdots$":
            ax.text(x, 0, label, ha="center", va="center", fontsize=18)
        else:
            ax.add_patch(Circle((x, 0), R, facecolor="#f3f6fb", edgecolor="#1f3b73", lw=1.6))
            ax.text(x, 0, label, ha="center", va="center", fontsize=16)

    for (xa, *_), (xb, *_) in zip(NODES[:-1], NODES[1:], strict=True):
        # reverse process p_θ (learned): left to right, above
        ax.add_patch(FancyArrowPatch((xa + R, 0.12), (xb - R, 0.12), arrowstyle="-|>", mutation_scale=16,
                                     lw=1.6, color="#1f3b73", connectionstyle="arc3,rad=-0.35"))
        # forward process q (fixed): right to left, below, dashed
        ax.add_patch(FancyArrowPatch((xb - R, -0.12), (xa + R, -0.12), arrowstyle="-|>", mutation_scale=16,
                                     lw=1.4, color="#b5452b", linestyle=(0, (4, 3)),
                                     connectionstyle="arc3,rad=-0.35"))
    ax.text(4.0, 0.95, r"reverse process $p_\theta(x_{t-1} \mid x_t)$, learned", ha="center",
            color="#1f3b73")
    ax.text(4.0, -1.1, r"forward process $q(x_t \mid x_{t-1})$, fixed: adds noise", ha="center",
            color="#b5452b")

    # Thumbnails: the moons at t = 0, T_MID and T under the closed form q(x_t | x_0) (Eq. 4),
    # each centred under its node (the node's place in figure coordinates once the aspect is applied).
    fig.canvas.draw()
    to_fig = ax.transData + fig.transFigure.inverted()
    for x, label, t in NODES:
        if t is None:
            continue
        pts = x0 if t == 0 else md.q_sample(x0, t=t, schedule=schedule)
        centre = to_fig.transform((x, 0))[0]
        sub = fig.add_axes((centre - 0.08, 0.06, 0.16, 0.34))
        sub.scatter(pts[:, 0], pts[:, 1], s=1.5, color="#1f3b73", alpha=0.5, linewidths=0, rasterized=True)
        sub.set_xlim(-3.2, 3.2)
        sub.set_ylim(-3.2, 3.2)
        sub.set_aspect("equal")
        sub.set_xticks([-3, 0, 3])
        sub.set_yticks([-3, 0, 3])
        sub.tick_params(labelsize=8, length=2, pad=1)
        sub.set_title(f"{label}, $t = {t}$", fontsize=10, pad=2)

    fig.savefig(OUT, format="svg", dpi=200, metadata={"Date": None})  # dpi: the rasterized points
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
