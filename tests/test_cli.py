"""The demo command writes its figure and data and prints the Beale table."""

import numpy as np

from samdyn import cli


def test_demo_writes_figure_and_data(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "87683 steps" in printed and printed.count("TRAPPED") == 2
    assert (tmp_path / "beale_trap.png").stat().st_size > 10_000
    data = np.load(tmp_path / "beale_trap.npz")
    assert data["trajectories"].shape == (4, 87_683, 2)
