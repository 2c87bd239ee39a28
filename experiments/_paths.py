"""The experiments' one output tree: ``experiments/out/<study>/`` holds a study's data and figures."""

from __future__ import annotations

from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def out_dir(study: str) -> Path:
    """``experiments/out/<study>/``, created if missing (``study``: the script's name, e.g. ``"bench_nets"``)."""
    path = OUT / study
    path.mkdir(parents=True, exist_ok=True)
    return path
