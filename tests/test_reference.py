"""Kim et al.'s Beale experiment: the trap, and agreement with the official-style torch loop."""

import sys
from pathlib import Path

import numpy as np
import pytest

import samdyn as sd
from samdyn import reference

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = np.load(ROOT / "tests" / "data" / "beale_torch_reference.npz")


@pytest.fixture(scope="module")
def trap():
    return reference.beale_trap()


def test_gd_stops_where_the_official_code_stops(trap):
    assert trap.steps == 87_683 == int(GOLDEN["steps"])
    np.testing.assert_array_equal(trap.rhos, [0.0, 0.1, 0.5, 1.0])


def test_large_rho_sam_is_trapped_at_the_saddle_gd_is_not(trap):
    np.testing.assert_array_equal(trap.trapped, [False, False, True, True])
    assert np.all(trap.dist_minimum[:2] < 0.55)  # GD and SAM 0.1 head for (3, 1/2)
    assert np.all(trap.dist_saddle[2:] < 1e-3)
    np.testing.assert_allclose(trap.loss[2:, -1], 14.203125, rtol=1e-6)  # f at the saddle
    # SAM's two gradients flip direction at the trap: the cosine takes both signs; GD's is 1.
    late = trap.cosine[:, -5000:]
    assert late[3].min() < -0.9 and late[3].max() > 0.9
    assert late[2].min() < 0 < late[2].max()
    np.testing.assert_allclose(trap.cosine[0], 1.0, rtol=1e-12)  # ρ = 0 (GD): g·g/‖g‖²


def test_trajectories_equal_the_torch_peer_where_the_map_is_not_chaotic(trap):
    """GD and SAM ρ=0.1 agree with the official-style torch loop to ~1 ulp over all 87 683 steps."""
    every = int(GOLDEN["every"])
    ours = trap.trajectories[:, every - 1 :: every]
    np.testing.assert_allclose(ours[:2], GOLDEN["trajectories"][:2], rtol=0, atol=1e-13)
    np.testing.assert_allclose(trap.final[:2], GOLDEN["final"][:2], rtol=0, atol=1e-13)
    # The trapped runs agree to 1e-12 until the saddle's chaotic orbit amplifies rounding.
    np.testing.assert_allclose(trap.trajectories[2:, :600], GOLDEN["first1000"][2:, :600], rtol=0, atol=1e-12)


def test_remaining_torch_gap_is_float64_rounding_amplified_by_the_map(trap):
    """After the trap, samdyn vs torch differ no more than samdyn vs itself started one ulp away."""
    x0 = np.array([[1.0, 2.0], [np.nextafter(1.0, 2.0), 2.0]])
    shadow = sd.simulate(
        sd.landscapes.get("beale"), sd.optim.sam(eps=reference.BEALE_EPS),
        sd.optim.hparams(lr=reference.BEALE_LR, rho=[0.5, 1.0]), x0, trap.steps, record="trajectory", every=100,
    )
    every = int(GOLDEN["every"])
    for i in (2, 3):
        torch_gap = np.abs(trap.trajectories[i, every - 1 :: every] - GOLDEN["trajectories"][i]).max()
        ulp_gap = np.abs(shadow.trajectory[i - 2, 0] - shadow.trajectory[i - 2, 1]).max()
        assert 1e-8 < torch_gap < 3 * ulp_gap
        assert np.linalg.norm(GOLDEN["final"][i] - [0.0, 1.0]) < reference.TRAP_RADIUS  # torch is trapped too


def test_live_torch_peer_matches_the_stored_reference():
    pytest.importorskip("torch")
    sys.path.insert(0, str(ROOT / "experiments"))
    import peers

    for i, rho in enumerate(GOLDEN["rhos"]):
        live = peers.torch_beale_sam(float(rho), 300)
        np.testing.assert_array_equal(live, GOLDEN["first1000"][i, :300])


def test_official_stop_rule_branches():
    t = np.linspace(0, 1, 50)[:, None] * np.array([[1.0, 0.0]])  # straight line towards (1, 0)
    assert reference.official_stop_step(t, np.ones(50), [1.0, 0.0], pos_tol=0.15) == int(np.argmax(1 - t[:, 0] < 0.15)) + 1
    flat = np.zeros((1000, 2)) + [5.0, 5.0]
    loss = np.full(1000, 3.0)
    assert reference.official_stop_step(flat, loss, [0.0, 0.0]) == 81  # 80 steps of unchanged loss
    with pytest.raises(ValueError, match="must include 0"):
        reference.beale_trap(rhos=(0.1,))
