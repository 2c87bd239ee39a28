"""The samdyn command: the demo writes its figure and data and prints the Beale table; bad
arguments are usage errors (exit code 2) before any compute; the header says how the steps ended."""

import subprocess
import sys

import numpy as np
import pytest

import samdyn
from samdyn import cli


def test_demo_writes_figure_and_data(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "87683 steps (GD's official stopping step)" in printed and printed.count("TRAPPED") == 2
    assert (tmp_path / "beale_trap.png").stat().st_size > 10_000
    data = np.load(tmp_path / "beale_trap.npz")
    assert data["trajectories"].shape == (4, 87_683, 2)


def test_budget_limited_demo_does_not_claim_the_official_stop(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path), "--max-steps", "300"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header.endswith("limited to 300 steps by --max-steps (GD's official stopping rule did not fire)")
    assert "official stopping step" not in header
    assert np.load(tmp_path / "beale_trap.npz")["trajectories"].shape == (4, 300, 2)


@pytest.mark.parametrize("value", ["0", "-5", "ten", "2.5"])
def test_bad_max_steps_is_a_usage_error_before_any_compute(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["demo", "--out", str(tmp_path / "out"), f"--max-steps={value}"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --max-steps: must be an integer >= 1, got {value if value.lstrip('-').isdigit() else repr(value)}" in err
    assert not (tmp_path / "out").exists()


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"samdyn {samdyn.__version__}"


def test_python_dash_m_samdyn_runs_the_same_command():
    out = subprocess.run([sys.executable, "-m", "samdyn", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"samdyn {samdyn.__version__}"
