"""Figures from results: landscape contours, trajectories, deterministic saving.

Functions draw on a matplotlib ``Axes`` they are given and return it; they compute no results.
Their arguments are checked before anything is drawn (a wrong shape raises with the expected
shape, and leaves the axes empty). :func:`save` writes PNG/PDF/SVG without timestamps or software
tags, so the same figure gives the same bytes and figure scripts can be checked into a paper's build.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
import numpy as np

from . import checks
from .landscapes import Landscape
from .stability import Basins, PhaseDiagram

__all__ = ["contour", "trajectories", "phase_diagram", "basins", "save", "heatmap", "curves"]


def _axes(where: str, ax) -> Axes:
    return checks.instance(where, "ax", ax, Axes, "a matplotlib Axes (e.g. from plt.subplots())")


def _box(where: str, name: str, value, expected: str):
    """Four finite numbers (x0, x1, y0, y1) with x0 < x1 and y0 < y1."""
    box = checks.array(where, name, value, shape=(4,))
    if not (box[0] < box[1] and box[2] < box[3]):
        checks.fail(where, name, expected, value)
    return tuple(box.tolist())


def contour(ax, landscape, *, resolution: int = 300, levels: int = 40, log: bool = True, domain=None, cmap="viridis"):
    """Filled contour plot of a 2-D landscape over its ``domain`` (or ``domain=((x0, x1), (y0, y1))``).

    Args:
        ax: the matplotlib Axes to draw on.
        landscape: a 2-D :class:`~samdyn.landscapes.Landscape`.
        resolution: grid points per axis (≥ 2).
        levels: number of contour levels (≥ 1).
        log: colour by log10(f − min f + 1e-3) so valleys stay visible.
        domain: ``((x0, x1), (y0, y1))``, shape (2, 2), with x0 < x1 and y0 < y1; default the
            landscape's own.

    Critical points from ``landscape.critical_points()`` are marked (minima ★, saddles ×, maxima ▲).
    """
    _axes("contour", ax)
    checks.instance("contour", "landscape", landscape, Landscape, "a samdyn Landscape (sd.landscapes.get(...))")
    if landscape.dim != 2:
        checks.fail("contour", "landscape", "a 2-D landscape", f"{landscape.name} of dimension {landscape.dim}")
    checks.integer("contour", "resolution", resolution, low=2)
    checks.integer("contour", "levels", levels, low=1)
    checks.boolean("contour", "log", log)
    box = checks.array("contour", "domain", landscape.domain if domain is None else domain, shape=(2, 2))
    x0, x1, y0, y1 = _box("contour", "domain", box.ravel(), "((x0, x1), (y0, y1)) with x0 < x1 and y0 < y1")
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
    """Draw 2-D paths with their end points; each thinned to about ``max_points`` points.

    Args:
        ax: the matplotlib Axes to draw on.
        paths: one set of paths: an array of shape (n, T, 2) (e.g. ``run.trajectory`` of a run with
            one batch axis) or a list of n arrays of shape (T_i, 2). Non-finite points (a diverged
            run) leave gaps. A batched ``run.trajectory`` of shape (a, b, T, 2) is refused:
            select one set first (``traj[i]`` or ``traj.reshape(-1, T, 2)``).
        labels: None, or n legend labels (one per path).
        start: None, or the common start point, shape (2,), drawn as +.
        colors: None, or n matplotlib colours (one per path).
        max_points: points drawn per path at most (≥ 2); the end point is always drawn.
    """
    _axes("trajectories", ax)
    what = "one set of 2-D paths: an array of shape (n, T, 2) or a list of (T, 2) arrays"
    if isinstance(paths, (str, bytes)) or not hasattr(paths, "__len__"):
        checks.fail("trajectories", "paths", what, paths, TypeError)
    if isinstance(paths, np.ndarray) or type(paths).__module__.startswith("jax"):
        if np.ndim(paths) != 3:
            checks.fail("trajectories", "paths", what, paths)
    arrays = []
    for i, path in enumerate(paths):
        arr = checks.array("trajectories", f"paths[{i}]", path, shape=(None, 2), finite=False)
        if len(arr) == 0:
            checks.fail("trajectories", f"paths[{i}]", "a path of at least one point, shape (T, 2)", arr)
        arrays.append(arr)
    if not arrays:
        checks.fail("trajectories", "paths", what + " (at least one)", paths)
    n = len(arrays)
    for name, value in (("labels", labels), ("colors", colors)):
        if value is None:
            continue
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
            checks.fail("trajectories", name, f"a sequence of {n} items (one per path)", value, TypeError)
        if len(value) != n:
            checks.fail("trajectories", name, f"a sequence of {n} items (one per path)", value)
    if start is not None:
        start = tuple(checks.array("trajectories", "start", start, shape=(2,)).tolist())
    checks.integer("trajectories", "max_points", max_points, low=2)
    for i, path in enumerate(arrays):
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
    """Draw the kind of a ``stability.PhaseDiagram`` over (η, ρ) on ``ax`` (η on x, ρ on y).

    Args:
        ax: the matplotlib Axes to draw on.
        pd: a :class:`~samdyn.stability.PhaseDiagram`; ``pd.kind`` of shape
            (len(lr), len(rho), len(momentum)).
        momentum_index: which momentum slice, ``0 ≤ i < len(pd.momentum)``.
        curve: None, or ``(ηs, ρs)`` to overlay, two 1-D arrays of the same length.
    """
    _axes("phase_diagram", ax)
    checks.instance("phase_diagram", "pd", pd, PhaseDiagram, "a stability.PhaseDiagram (sd.stability.phase_diagram(...))")
    grid = (np.size(pd.lr), np.size(pd.rho), np.size(pd.momentum))
    if np.shape(pd.kind) != grid:
        checks.fail("phase_diagram", "pd.kind", f"of shape (len(lr), len(rho), len(momentum)) = {grid}",
                    np.asarray(pd.kind))
    checks.integer("phase_diagram", "momentum_index", momentum_index, low=0, high=grid[2] - 1)
    if curve is not None:
        if isinstance(curve, (str, bytes)) or not hasattr(curve, "__len__") or len(curve) != 2:
            checks.fail("phase_diagram", "curve", "a pair (ηs, ρs) of 1-D arrays", curve, TypeError)
        xs = checks.array("phase_diagram", "curve[0]", curve[0], ndim=1, finite=False)
        checks.array("phase_diagram", "curve[1]", curve[1], shape=(len(xs),), finite=False)
    cmap = ListedColormap(["#2c7bb6", "#fdae61", "#d7191c", "#7f7f7f"])
    ax.pcolormesh(pd.lr, pd.rho, pd.kind[:, :, momentum_index].T, cmap=cmap, vmin=-0.5, vmax=3.5, shading="nearest")
    if curve is not None:
        ax.plot(*curve, "k--", lw=1)
    ax.set_xlabel("learning rate η")
    ax.set_ylabel("ρ")
    return ax


def basins(ax, b, extent):
    """Draw the labels of a ``stability.Basins`` on ``ax``.

    Args:
        ax: the matplotlib Axes to draw on.
        b: a :class:`~samdyn.stability.Basins` of a 2-D grid of starts: ``b.labels`` of shape
            (nx, ny) in ij order (starts built with ``np.meshgrid(xs, ys, indexing="ij")``). A flat
            list of starts, labels of shape (n,), has no picture: reshape the starts into a grid.
        extent: ``(x_min, x_max, y_min, y_max)`` of the start grid, with x_min < x_max, y_min < y_max.
    """
    _axes("basins", ax)
    checks.instance("basins", "b", b, Basins, "a stability.Basins (sd.stability.basins(...))")
    if np.ndim(b.labels) != 2:
        checks.fail("basins", "b.labels", "a 2-D grid of starts, shape (nx, ny) (reshape a flat list of starts "
                    "into a grid)", np.asarray(b.labels))
    extent = _box("basins", "extent", extent, "(x_min, x_max, y_min, y_max) with x_min < x_max and y_min < y_max")
    ax.imshow(b.labels.T, origin="lower", extent=extent, cmap="tab10", vmin=-3, vmax=6, interpolation="nearest", aspect="auto")
    for c in b.critical_points:
        ax.plot(*c.point[:2], "k*" if c.kind == "minimum" else "kx")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    return ax


def save(fig, path) -> Path:
    """Save ``fig`` reproducibly (no timestamps / software metadata) and close it; returns the path.

    Args:
        fig: a matplotlib Figure.
        path: where to write; the suffix picks the format: ``.png``, ``.pdf`` or ``.svg`` (the
            formats whose bytes are made reproducible). Missing folders are created.
    """
    checks.instance("save", "fig", fig, Figure, "a matplotlib Figure")
    if not isinstance(path, (str, Path)):
        checks.fail("save", "path", "a file path (str or Path)", path, TypeError)
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    metadata = {"png": {"Software": None}, "pdf": {"CreationDate": None, "Producer": None}, "svg": {"Date": None}}.get(fmt)
    if metadata is None:
        checks.fail("save", "path", "a file name ending in .png, .pdf or .svg", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata=metadata, bbox_inches="tight", dpi=150)
    plt.close(fig)
    return path


# ---- sweep results (xarray): one call per figure -------------------------------------------------

_REDUCTIONS = ("mean", "median", "min", "max", "std")


def _sweep_array(where: str, data, var):
    """The DataArray to plot: ``data`` itself, or ``data[var]`` of a Dataset (its only variable by default)."""
    import xarray as xr

    if isinstance(data, xr.Dataset):
        names = [n for n in data.data_vars if n != "done"]
        if var is None and len(names) != 1:
            checks.fail(where, "var", "the variable to plot, one of " + ", ".join(names), var)
        var = names[0] if var is None else var
        if var not in data.data_vars:
            checks.fail(where, "var", "one of " + ", ".join(names), var)
        return data[var]
    if isinstance(data, xr.DataArray):
        return data
    checks.fail(where, "data", "an xarray Dataset or DataArray (e.g. samdyn.sweep.open(STORE))", data, TypeError)


def _reduce(where: str, da, keep: dict, reduce):
    """``da`` reduced over every dim not in ``keep`` (parameter name -> dim; bools count as 0/1),
    transposed to the order of ``keep``."""
    for param, dim in keep.items():
        if dim not in da.dims:
            checks.fail(where, param, f"a dimension of {da.name} ({', '.join(map(str, da.dims))})", dim)
    others = [d for d in da.dims if d not in keep.values()]
    if da.dtype == bool:
        da = da.astype(np.float64)
    if not others:
        out = da
    elif isinstance(reduce, str) and reduce in _REDUCTIONS:
        out = getattr(da, reduce)(others)
    elif isinstance(reduce, (float, int)) and not isinstance(reduce, bool) and 0 <= reduce <= 1:
        out = da.quantile(float(reduce), dim=others).drop_vars("quantile")
    elif callable(reduce):
        out = reduce(da, others)
    else:
        checks.fail(where, "reduce", f"one of {', '.join(map(repr, _REDUCTIONS))}, a quantile in [0, 1] or a"
                    " function (DataArray, dims) -> DataArray", reduce)
    return out.transpose(*keep.values()), others


def _label(obj) -> str:
    """``long_name [units]`` from an xarray object's attributes (its name when it has none)."""
    name = obj.attrs.get("long_name", obj.name)
    units = obj.attrs.get("units", "")
    return f"{name} [{units}]" if units else str(name)


def _positions(ax_axis, coord):
    """Numeric coordinates as they are; strings at 0, 1, … with tick labels."""
    values = np.asarray(coord.values)
    if values.dtype.kind in "fiu":
        return values
    ticks = np.arange(values.size)
    ax_axis.set_ticks(ticks, [str(v) for v in values])
    return ticks


def _describe_reduction(reduce, others) -> str:
    if not others:
        return ""
    how = reduce if isinstance(reduce, str) else (f"quantile {reduce:g}" if not callable(reduce)
                                                  else getattr(reduce, "__name__", "reduced"))
    return f"{how} over {', '.join(map(str, others))}"


def heatmap(data, *, x: str, y: str, var: str | None = None, reduce="mean", ax=None, cmap="viridis", **kwargs):
    """A heatmap of a sweep result over two of its dimensions, the others reduced.

    Args:
        data: an ``xarray.Dataset`` (e.g. ``samdyn.sweep.open(STORE)``; pick ``var``) or DataArray.
            Select first what should not be reduced, e.g. ``ds.msd.isel(step=-1)``.
        x, y: the dimensions on the horizontal and vertical axes.
        var: the variable of a Dataset (default: its only one).
        reduce: how the other dimensions (seeds, particles, …) are reduced: ``"mean"``,
            ``"median"``, ``"min"``, ``"max"``, ``"std"``, a quantile in [0, 1], or a function
            ``(DataArray, dims) -> DataArray``. Booleans count as 0/1 (``"mean"`` of ``diverged``
            is the fraction diverged).
        ax: Axes to draw on (default: a new figure).
        cmap, kwargs: passed to ``pcolormesh``.

    Returns:
        The Axes: axis labels and a colour bar labelled ``long_name [units]`` from the attributes.

    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.arange(12.0).reshape(2, 3, 2), dims=("rho", "momentum", "seed"),
    ...                   coords={"rho": [0.0, 0.1], "momentum": [0.0, 0.5, 0.9]}, attrs={"units": "steps"})
    >>> ax = heatmap(da, x="rho", y="momentum")
    >>> ax.collections[0].get_array().reshape(3, 2).tolist()
    [[0.5, 6.5], [2.5, 8.5], [4.5, 10.5]]
    """
    where = "heatmap"
    da = _sweep_array(where, data, var)
    if x == y:
        checks.fail(where, "y", f"a dimension other than x = {x!r}", y)
    out, others = _reduce(where, da, {"y": y, "x": x}, reduce)
    if ax is None:
        ax = plt.subplots(figsize=(5.2, 4))[1]
    xs = _positions(ax.xaxis, da[x]) if x in da.coords else np.arange(da.sizes[x])
    ys = _positions(ax.yaxis, da[y]) if y in da.coords else np.arange(da.sizes[y])
    mesh = ax.pcolormesh(xs, ys, np.asarray(out.values, dtype=np.float64), shading="nearest", cmap=cmap, **kwargs)
    ax.figure.colorbar(mesh, ax=ax, label=_label(da))
    ax.set_xlabel(_label(da[x]) if x in da.coords else x)
    ax.set_ylabel(_label(da[y]) if y in da.coords else y)
    ax.set_title(_describe_reduction(reduce, others), fontsize=9)
    return ax


def curves(data, *, x: str, hue: str | None = None, var: str | None = None, reduce="mean", band=None, ax=None,
           **kwargs):
    """A family of curves of a sweep result: ``x`` on the horizontal axis, one curve per value of ``hue``.

    Args:
        data: an ``xarray.Dataset`` (pick ``var``) or DataArray.
        x: the dimension along each curve (e.g. ``"step"`` or ``"momentum"``).
        hue: the dimension whose values make the family (None: one curve).
        var: the variable of a Dataset (default: its only one).
        reduce: how the other dimensions are reduced (see :func:`heatmap`).
        band: ``(low, high)`` quantiles over the reduced dimensions, drawn as a shaded band.
        ax: Axes to draw on (default: a new figure).
        kwargs: passed to ``plot``.

    Returns:
        The Axes, with axis labels from the attributes and a legend when ``hue`` is given.
    """
    where = "curves"
    da = _sweep_array(where, data, var)
    keep = {"x": x, **({"hue": hue} if hue is not None else {})}
    if hue == x:
        checks.fail(where, "hue", f"a dimension other than x = {x!r}", hue)
    out, others = _reduce(where, da, keep, reduce)
    if band is not None:
        lo_hi = checks.array(where, "band", band, shape=(2,))
        if not 0 <= lo_hi[0] < lo_hi[1] <= 1:
            checks.fail(where, "band", "two quantiles 0 <= low < high <= 1", band)
        if not others:
            checks.fail(where, "band", "None when no dimension is left to reduce", band)
        lows, highs = (_reduce(where, da, keep, float(q))[0] for q in lo_hi)
    if ax is None:
        ax = plt.subplots(figsize=(5.2, 3.8))[1]
    xs = _positions(ax.xaxis, da[x]) if x in da.coords else np.arange(da.sizes[x])
    for i in range(1 if hue is None else out.sizes[hue]):
        sel = {} if hue is None else {hue: i}
        value = None if hue is None else np.asarray(da[hue].values)[i] if hue in da.coords else i
        label = None if hue is None else f"{da[hue].attrs.get('long_name', hue) if hue in da.coords else hue} = " + (
            f"{value:g}" if isinstance(value, (float, np.floating)) else str(value))
        (line,) = ax.plot(xs, np.asarray(out.isel(sel).values, dtype=np.float64), label=label, **kwargs)
        if band is not None:
            ax.fill_between(xs, np.asarray(lows.isel(sel).values, dtype=np.float64),
                            np.asarray(highs.isel(sel).values, dtype=np.float64), color=line.get_color(), alpha=0.2,
                            linewidth=0)
    ax.set_xlabel(_label(da[x]) if x in da.coords else x)
    ax.set_ylabel(_label(da))
    title = _describe_reduction(reduce, others)
    if band is not None:
        title += f"; band: quantiles {lo_hi[0]:g}–{lo_hi[1]:g}"
    ax.set_title(title, fontsize=9)
    if hue is not None:
        ax.legend(fontsize=8)
    return ax
