"""Figures from results: landscape contours, trajectories, deterministic saving.

Functions draw on a matplotlib ``Axes`` they are given and return it; they compute no results.
:func:`save` writes PNG/PDF/SVG without timestamps or software tags, so the same figure gives the
same bytes and figure scripts can be checked into a paper's build.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.colors import ListedColormap
import numpy as np

__all__ = ["contour", "trajectories", "phase_diagram", "basins", "save"]


def contour(ax, landscape, *, resolution: int = 300, levels: int = 40, log: bool = True, domain=None, cmap="viridis"):
    """Filled contour plot of a 2-D landscape over its ``domain`` (or ``domain=((x0, x1), (y0, y1))``).

    With ``log=True`` the colour scale is log10(f − min f + 1e-3) so valleys stay visible.
    Critical points from ``landscape.critical_points()`` are marked (minima ★, saddles ×, maxima ▲).
    """
    if landscape.dim != 2:
        raise ValueError(f"contour: needs a 2-D landscape, got dimension {landscape.dim}")
    (x0, x1), (y0, y1) = domain or landscape.domain
    xs, ys = np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution)
    X, Y = np.meshgrid(xs, ys)
    Z = landscape.loss_numpy(np.stack([X, Y]))
    if log:
        Z = np.log10(Z - Z.min() + 1e-3)
    ax.contourf(X, Y, Z, levels=levels, cmap=cmap)
    ax.contour(X, Y, Z, levels=levels, colors="k", linewidths=0.2, alpha=0.4)
    markers = {"minimum": ("*", "white"), "saddle": ("x", "red"), "maximum": ("^", "orange"), "degenerate": ("D", "red")}
    for cp in landscape.critical_points():
        (px, py), (m, c) = cp.point, markers[cp.kind]
        if x0 <= px <= x1 and y0 <= py <= y1:
            ax.plot(px, py, m, color=c, markersize=10, markeredgecolor="k", zorder=5)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel(str(landscape.symbols[0]))
    ax.set_ylabel(str(landscape.symbols[1]))
    return ax


def trajectories(ax, paths, labels=None, *, start=None, colors=None, max_points: int = 2000):
    """Draw 2-D paths (each of shape (T, 2)) with their end points; thinned to ``max_points``."""
    for i, path in enumerate(paths):
        path = np.asarray(path)
        if start is not None:
            path = np.concatenate([np.asarray(start, dtype=float)[None], path])
        stride = max(1, len(path) // max_points)
        shown = np.concatenate([path[::stride], path[-1:]])
        color = None if colors is None else colors[i]
        (line,) = ax.plot(shown[:, 0], shown[:, 1], lw=1.8, color=color, label=None if labels is None else labels[i])
        ax.plot(*path[-1], "o", color=line.get_color(), markersize=7, markeredgecolor="k", zorder=6)
    if start is not None:
        ax.plot(*start, "+", color="k", markersize=14, markeredgewidth=2, zorder=6)
    if labels is not None:
        ax.legend(loc="best", framealpha=0.9)
    return ax


def phase_diagram(ax, pd, *, momentum_index: int = 0, curve=None):
    """Draw the kind of a ``stability.PhaseDiagram`` over (η, ρ) on ``ax`` (η on x, ρ on y); ``curve`` = (ηs, ρs) to overlay."""
    cmap = ListedColormap(["#2c7bb6", "#fdae61", "#d7191c", "#7f7f7f"])
    ax.pcolormesh(pd.lr, pd.rho, pd.kind[:, :, momentum_index].T, cmap=cmap, vmin=-0.5, vmax=3.5, shading="nearest")
    if curve is not None:
        ax.plot(*curve, "k--", lw=1)
    ax.set_xlabel("learning rate η")
    ax.set_ylabel("ρ")
    return ax


def basins(ax, b, extent):
    """Draw the labels of a ``stability.Basins`` on ``ax``; ``extent`` = (x_min, x_max, y_min, y_max) of the start grid (ij order)."""
    ax.imshow(b.labels.T, origin="lower", extent=extent, cmap="tab10", vmin=-3, vmax=6, interpolation="nearest", aspect="auto")
    for c in b.critical_points:
        ax.plot(*c.point[:2], "k*" if c.kind == "minimum" else "kx")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    return ax


def save(fig, path) -> Path:
    """Save ``fig`` reproducibly (no timestamps / software metadata) and close it; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = path.suffix.lstrip(".").lower()
    metadata = {"png": {"Software": None}, "pdf": {"CreationDate": None, "Producer": None}, "svg": {"Date": None}}.get(fmt)
    fig.savefig(path, metadata=metadata, bbox_inches="tight", dpi=150)
    plt.close(fig)
    return path
