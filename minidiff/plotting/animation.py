"""Self-contained HTML animations (matplotlib ``FuncAnimation.to_jshtml``) that play and scrub in the
static book with no kernel. Chapter "The forward process"."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt

from ._common import DATA_COLOR, DEFAULT_LIM, SAMPLE_COLOR, ArrayLike, square, to_points

MAX_FRAMES = 120  # each frame is an embedded PNG: keep notebooks small


def animate_points(
    frames: Sequence[ArrayLike], titles: Sequence[str] | None = None, *, background: ArrayLike | None = None,
    lim: float | None = DEFAULT_LIM, fps: int = 8, dpi: int = 100, size: float = 3.6, s: float = 2.0,
    max_points: int = 2000,
) -> str:
    """An HTML/JavaScript player of a point cloud (N, 2) changing over ``frames``, with one title per frame.

    Returns the HTML string of :meth:`FuncAnimation.to_jshtml` (PNG frames embedded, play/scrub controls);
    show it with ``IPython.display.HTML(...)``. At most :data:`MAX_FRAMES` frames.
    """
    from matplotlib.animation import FuncAnimation

    if not frames:
        raise ValueError("frames must hold at least one (N, 2) point cloud, got none")
    if len(frames) > MAX_FRAMES:
        raise ValueError(f"at most {MAX_FRAMES} frames keep the HTML small, got {len(frames)}")
    if titles is not None and len(titles) != len(frames):
        raise ValueError(f"titles must have one entry per frame ({len(frames)}), got {len(titles)}")
    if isinstance(fps, bool) or not isinstance(fps, int) or fps < 1:
        raise ValueError(f"fps must be a positive int, got fps = {fps!r}")
    points = [to_points("frames[i]", f)[:max_points] for f in frames]
    fig, ax = plt.subplots(figsize=(size, size), dpi=dpi)
    if background is not None:
        b = to_points("background", background)[:max_points]
        ax.scatter(b[:, 0], b[:, 1], s=s, c=DATA_COLOR, alpha=0.5, linewidths=0)
    scatter = ax.scatter(points[0][:, 0], points[0][:, 1], s=s, c=SAMPLE_COLOR, alpha=0.6, linewidths=0)
    square(ax, lim)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if titles is not None:
        ax.set_title(titles[0])  # before the layout, so that the space for the title is kept
    fig.tight_layout()

    def draw(i: int) -> tuple:
        scatter.set_offsets(points[i])
        if titles is not None:
            ax.set_title(titles[i])
        return (scatter,)

    anim = FuncAnimation(fig, draw, frames=len(points), interval=1000 / fps, blit=False)
    html = anim.to_jshtml(fps=fps, embed_frames=True, default_mode="once")
    plt.close(fig)
    return html
