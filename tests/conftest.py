"""Test-wide settings: float64, strict rank promotion, a non-interactive matplotlib backend."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")


# ---- the quick tier: `make test-fast` runs `pytest -m fast` (the edit–test loop, under a minute) ----
import pytest  # noqa: E402

#: Whole files in the quick tier, and single tests (file::name prefix) from the slower files, chosen
#: so that every module is touched: the full suite stays `make test`.
FAST_FILES = {"test_architecture.py", "test_optim.py"}
FAST_TESTS = {
    "test_simulate.py": ("test_batch_shape_and_each_entry", "test_custom_observable", "test_blow_up_bound",
                         "test_new_hyperparameter_values_compile_nothing", "test_bad_input_fails_before_compute"),
    "test_cli.py": ("test_bad_max_steps", "test_version"),
    "test_engine.py": ("test_chunk_size_is_capped", "test_numpy_loss_and_string", "test_reprs_are_summaries"),
    "test_noise.py": ("test_bad_input_fails_early", "test_gaussian_covariance_and_factor"),
    "test_diffusion.py": ("test_transition_matrix_is_the_hand_derived_one", "test_stats_mode_bad_input"),
    "test_stability.py": ("test_bad_input_is_refused_before_compute",),
    "test_variants.py": ("test_bad_options_fail_clearly", "test_schedules_closed_forms"),
    "test_landscapes.py": ("test_derivatives_match_sympy", "test_from_expr_never_runs_code"),
    "test_plotting.py": ("test_bad_input_fails_before_drawing",),
    "test_sweep.py": ("test_bad_spec_fails_before_compute", "test_heatmap_reduces", "test_monitor_spec_errors"),
    "test_figures.py": ("test_every_script_takes_quick", "test_used_macros_finds", "test_lock_file_pins"),
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        name = item.path.name
        in_package = item.path.name in ("checks.py", "engine.py")  # doctests of the house modules
        picked = FAST_TESTS.get(name, ())
        if name in FAST_FILES or in_package or any(item.name.startswith(p) for p in picked):
            item.add_marker(pytest.mark.fast)


# ---- figure scripts (issue 14): each runs once per session at --quick size, into a temporary root ----
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def figures(tmp_path_factory):
    """``figures(name)`` runs ``experiments/<name>.py --quick`` once per session (in its own process,
    with ``SAMDYN_FIGURES_OUT`` at a temporary root) and returns its JSON record; ``figures.root`` is
    that root (``<root>/<name>/`` holds the script's outputs)."""
    root = tmp_path_factory.mktemp("figures")
    records = {}

    def get(name: str) -> dict:
        if name not in records:
            env = dict(os.environ, SAMDYN_FIGURES_OUT=str(root), PYTHONPATH=str(REPO), MPLBACKEND="Agg")
            cmd = [sys.executable, str(REPO / "experiments" / "figures.py"), "--quick", "--only", name]
            subprocess.run(cmd, cwd=REPO, env=env, check=True)
            records[name] = json.loads((root / name / f"{name}.json").read_text())
        return records[name]

    get.root = root
    return get
