"""The figure scripts' shared frame (issue 14): ``--quick``, the output root, one house style, and the
writers for figures (PDF + PNG, reproducible bytes) and headline numbers (JSON + LaTeX macros).

A figure script does::

    args = _report.cli(__doc__)                     # --quick
    study = _report.Study("fig_beale", args.quick)  # experiments/out/fig_beale/ (full) or out/quick/fig_beale/
    ...
    study.figure(fig)                               # fig_beale.pdf and fig_beale.png
    study.numbers({"rho_star": 0.036}, macros={"bealeRhoStar": _report.num(0.036)})

The numbers land in ``<study>.json`` (with the versions the run used and whether it was quick) and the
macros in ``<study>_numbers.tex`` (``\\newcommand``s); ``paper/main.tex`` includes those files and the
figures by name, found through ``TEXINPUTS`` (``make paper`` points it at the output root). No number
in the paper is typed by hand: ``tests/test_figures.py`` fails when ``main.tex`` uses a macro that no
script defines.

Output roots: full size writes the committed tree ``experiments/out/``; ``--quick`` writes
``out/quick/`` at the repository root (ignored), so a smoke run never overwrites the published
outputs. ``SAMDYN_FIGURES_OUT`` overrides the root (the tests point it at a temporary folder).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import platform
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from cycler import cycler  # noqa: E402

from samdyn import plotting  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FULL_ROOT = REPO / "experiments" / "out"
QUICK_ROOT = REPO / "out" / "quick"

#: Packages whose versions each figure's JSON records (those installed).
VERSIONED = ("samdyn", "numpy", "jax", "jaxlib", "scipy", "sympy", "matplotlib", "xarray", "zarr",
             "mnist1d", "scikit-learn", "dask", "distributed", "torch")

#: House style: paper-sized fonts; a colour cycle that is also a dash and marker cycle, so lines stay
#: apart in greyscale; perceptually uniform colour maps (viridis / cividis) are the scripts' choice.
STYLE = {
    "figure.dpi": 150,
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "lines.linewidth": 1.2,
    "lines.markersize": 3,
    "axes.prop_cycle": (cycler(color=["#000000", "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00"])
                        + cycler(linestyle=["-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (1, 1))])
                        + cycler(marker=["", "o", "s", "^", "v", "D"])),
    "axes.grid": False,
    "savefig.bbox": "tight",
}
#: Width of one column of ``paper/main.tex`` (article, 1 in margins), inches.
TEXT_WIDTH = 6.5

_MACRO = re.compile(r"^[A-Za-z]+$")


def cli(doc: str | None = None, argv=None) -> argparse.Namespace:
    """Parse the one flag every figure script takes: ``--quick`` (CI size, seconds; default full size)."""
    parser = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0] if doc else None)
    parser.add_argument("--quick", action="store_true", help="CI size (seconds); default: full size")
    return parser.parse_args(argv)


def root(quick: bool) -> Path:
    """The output root: ``$SAMDYN_FIGURES_OUT`` if set, else ``out/quick`` (quick) or ``experiments/out``."""
    env = os.environ.get("SAMDYN_FIGURES_OUT")
    if env:
        return Path(env)
    return QUICK_ROOT if quick else FULL_ROOT


def versions() -> dict:
    """Python and the versions of the installed packages in ``VERSIONED`` (the run's environment)."""
    found = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def num(x: float, digits: int = 3) -> str:
    """``x`` to ``digits`` significant figures as LaTeX text: plain decimals for 1e-3 ≤ |x| < 1e4,
    ``a\\times10^{b}`` otherwise; negatives and powers in ``\\ensuremath`` (a true minus sign);
    ``nan``/``inf`` are spelled out."""
    x = float(x)
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return r"\ensuremath{\infty}" if x > 0 else r"\ensuremath{-\infty}"
    if x == 0:
        return "0"
    x = float(f"{x:.{digits - 1}e}")  # rounded to `digits` significant figures first (0.99999 → 1.00)
    exponent = math.floor(math.log10(abs(x)))
    if -3 <= exponent < 4:
        decimals = max(digits - 1 - exponent, 0)
        text = f"{x:.{decimals}f}"
        return rf"\ensuremath{{{text}}}" if x < 0 else text  # a minus sign, not a hyphen
    text = f"{x / 10**exponent:.{digits - 1}f}"
    return rf"\ensuremath{{{text}\times 10^{{{exponent}}}}}"


class Study:
    """One figure script's outputs: ``<root>/<name>/`` holding ``<name>.{pdf,png,json}`` (+ data files)
    and ``<name>_numbers.tex``.

    Args:
        name: the script's name (``"fig_beale"``); also the folder and file stem.
        quick: CI size; picks the output root (see :func:`root`) and is recorded in the JSON.
    """

    def __init__(self, name: str, quick: bool):
        self.name = name
        self.quick = bool(quick)
        self.dir = root(self.quick) / name
        self.dir.mkdir(parents=True, exist_ok=True)
        plt.rcParams.update(STYLE)

    def path(self, suffix: str, stem: str | None = None) -> Path:
        """``<dir>/<stem or name><suffix>`` (``suffix`` with its dot, e.g. ``".npz"``)."""
        return self.dir / f"{stem or self.name}{suffix}"

    def figure(self, fig, stem: str | None = None) -> list[Path]:
        """Write ``fig`` as vector PDF and PNG with reproducible bytes (``plotting.save``) and close it."""
        pdf = self.path(".pdf", stem)
        png = self.path(".png", stem)
        fig.savefig(png, metadata={"Software": None}, dpi=200)  # savefig keeps fig open for the PDF
        plotting.save(fig, pdf)
        return [pdf, png]

    def numbers(self, values: dict, macros: dict[str, str] | None = None) -> Path:
        """Write the headline numbers: ``<name>.json`` = ``{"quick", "versions", "numbers": values}``
        and ``<name>_numbers.tex`` with one ``\\newcommand{\\<key>}{<text>}`` per entry of ``macros``.

        Args:
            values: JSON-serialisable headline numbers (the full record).
            macros: LaTeX macro name (letters only) → its text (use :func:`num` for numbers). The
                paper may use only these; names should start with a prefix unique to the study.
        """
        macros = dict(macros or {})
        bad = [k for k in macros if not _MACRO.match(k)]
        if bad:
            raise ValueError(f"Study.numbers: macros names must be letters only, got {bad}")
        record = {"study": self.name, "quick": self.quick, "versions": versions(), "numbers": values}
        path = self.path(".json")
        path.write_text(json.dumps(record, indent=2, sort_keys=True, default=_jsonable) + "\n")
        lines = [f"% generated by experiments/{self.name}.py{' --quick' if self.quick else ''}; do not edit"]
        lines += [f"\\newcommand{{\\{k}}}{{{v}}}" for k, v in sorted(macros.items())]
        self.path("_numbers.tex").write_text("\n".join(lines) + "\n")
        return path


def _jsonable(x):
    """``json.dumps`` fallback: numpy scalars and arrays become Python numbers and lists."""
    if hasattr(x, "tolist"):
        return x.tolist()
    if hasattr(x, "item"):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
