"""Plot helpers: wrong shapes and types fail with the expected shape before anything is drawn;
good input draws exactly the data; save() gives the same bytes twice."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import samdyn as sd  # noqa: E402
from samdyn import plotting, stability  # noqa: E402


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def _untouched(ax):
    return not (ax.lines or ax.collections or ax.images or ax.patches or ax.texts or ax.get_legend())


def _phase_diagram(kind_shape=(3, 4, 1)):
    lr, rho, mom = np.linspace(0.1, 0.3, 3), np.linspace(0.2, 0.8, 4), np.array([0.0])
    kind = np.arange(np.prod(kind_shape)).reshape(kind_shape) % 4
    return stability.PhaseDiagram(lr, rho, mom, np.ones(kind_shape), kind.astype(np.int8), np.zeros(2))


def _basins(labels):
    labels = np.asarray(labels)
    grid = labels.shape
    return stability.Basins(labels, np.ones(grid, int), np.zeros(grid, bool), np.zeros(grid + (2,)),
                            np.zeros(grid + (2,)), sd.landscapes.get("saddle").critical_points(), np.zeros(grid, bool))


PATHS = np.cumsum(np.random.default_rng(0).normal(size=(3, 50, 2)), axis=1)


@pytest.mark.parametrize("call, error, match", [
    (lambda ax: plotting.trajectories(ax, np.zeros((2, 3, 50, 2))), ValueError,
     r"trajectories: paths must be one set of 2-D paths: an array of shape \(n, T, 2\) or a list of \(T, 2\) arrays, "
     r"got array of shape \(2, 3, 50, 2\)"),
    (lambda ax: plotting.trajectories(ax, PATHS[0]), ValueError, r"trajectories: paths must be one set .*got array of shape \(50, 2\)"),
    (lambda ax: plotting.trajectories(ax, [PATHS[0], np.zeros((5, 3))]), ValueError,
     r"trajectories: paths\[1\] must be a real array of shape \(n, 2\), got array of shape \(5, 3\)"),
    (lambda ax: plotting.trajectories(ax, [PATHS[0], np.zeros((0, 2))]), ValueError, r"trajectories: paths\[1\] must be a path of at least one point"),
    (lambda ax: plotting.trajectories(ax, []), ValueError, r"trajectories: paths must be one set .*\(at least one\)"),
    (lambda ax: plotting.trajectories(ax, "path"), TypeError, r"trajectories: paths must be one set"),
    (lambda ax: plotting.trajectories(ax, PATHS, ["GD", "SAM"]), ValueError,
     r"trajectories: labels must be a sequence of 3 items \(one per path\), got \['GD', 'SAM'\]"),
    (lambda ax: plotting.trajectories(ax, PATHS, "GD"), TypeError, r"trajectories: labels must be a sequence of 3 items"),
    (lambda ax: plotting.trajectories(ax, PATHS, colors="red"), TypeError, r"trajectories: colors must be a sequence of 3 items"),
    (lambda ax: plotting.trajectories(ax, PATHS, start=(1.0, 2.0, 3.0)), ValueError, r"trajectories: start must be a finite real array of shape \(2,\)"),
    (lambda ax: plotting.trajectories(ax, PATHS, max_points=1), ValueError, r"trajectories: max_points must be an integer >= 2, got 1"),
    (lambda ax: plotting.trajectories("ax", PATHS), TypeError, r"trajectories: ax must be a matplotlib Axes"),
    (lambda ax: plotting.contour(ax, sd.landscapes.get("quadratic", eigenvalues=(1, 2, 3))), ValueError,
     r"contour: landscape must be a 2-D landscape, got 'quadratic of dimension 3'"),
    (lambda ax: plotting.contour(ax, "beale"), TypeError, r"contour: landscape must be a samdyn Landscape"),
    (lambda ax: plotting.contour(ax, sd.landscapes.get("saddle"), domain=((1, 0), (0, 1))), ValueError,
     r"contour: domain must be \(\(x0, x1\), \(y0, y1\)\) with x0 < x1 and y0 < y1"),
    (lambda ax: plotting.contour(ax, sd.landscapes.get("saddle"), domain=(0, 1)), ValueError, r"contour: domain must be a finite real array of shape \(2, 2\)"),
    (lambda ax: plotting.contour(ax, sd.landscapes.get("saddle"), resolution=1), ValueError, r"contour: resolution must be an integer >= 2"),
    (lambda ax: plotting.contour(ax, sd.landscapes.get("saddle"), levels=2.5), ValueError, r"contour: levels must be an integer >= 1, got 2.5"),
    (lambda ax: plotting.contour(ax, sd.landscapes.get("saddle"), log="no"), TypeError, r"contour: log must be True or False"),
    (lambda ax: plotting.basins(ax, _basins(np.zeros(6, int)), (0, 1, 0, 1)), ValueError,
     r"basins: b.labels must be a 2-D grid of starts, shape \(nx, ny\) .*got \[0, 0, 0, 0, 0, 0\]"),
    (lambda ax: plotting.basins(ax, _basins(np.zeros((2, 2, 2), int)), (0, 1, 0, 1)), ValueError, r"basins: b.labels must be a 2-D grid"),
    (lambda ax: plotting.basins(ax, _basins(np.zeros((2, 3), int)), (0, 1, 0)), ValueError, r"basins: extent must be a finite real array of shape \(4,\)"),
    (lambda ax: plotting.basins(ax, _basins(np.zeros((2, 3), int)), (0, 1, 1, 1)), ValueError,
     r"basins: extent must be \(x_min, x_max, y_min, y_max\) with x_min < x_max and y_min < y_max, got \(0, 1, 1, 1\)"),
    (lambda ax: plotting.basins(ax, np.zeros((2, 3)), (0, 1, 0, 1)), TypeError, r"basins: b must be a stability.Basins"),
    (lambda ax: plotting.phase_diagram(ax, _phase_diagram(), momentum_index=1), ValueError,
     r"phase_diagram: momentum_index must be an integer >= 0 and <= 0, got 1"),
    (lambda ax: plotting.phase_diagram(ax, _phase_diagram((4, 3, 1))), ValueError,
     r"phase_diagram: pd.kind must be of shape \(len\(lr\), len\(rho\), len\(momentum\)\) = \(3, 4, 1\), got array of shape \(4, 3, 1\)"),
    (lambda ax: plotting.phase_diagram(ax, _phase_diagram(), curve=([0.1, 0.2], [0.5])), ValueError,
     r"phase_diagram: curve\[1\] must be a real array of shape \(2,\)"),
    (lambda ax: plotting.phase_diagram(ax, _phase_diagram(), curve=[0.1, 0.2, 0.3]), TypeError, r"phase_diagram: curve must be a pair"),
    (lambda ax: plotting.phase_diagram(ax, np.zeros((3, 4))), TypeError, r"phase_diagram: pd must be a stability.PhaseDiagram"),
])
def test_bad_input_fails_before_drawing(ax, call, error, match):
    with pytest.raises(error, match="^" + match):
        call(ax)
    assert _untouched(ax)


def test_trajectories_draw_each_path_its_end_and_the_legend(ax):
    nan_path = PATHS[2].copy()
    nan_path[40:] = np.nan  # a diverged run: drawn with a gap, not refused
    plotting.trajectories(ax, [PATHS[0], PATHS[1], nan_path], ["a", "b", "c"], start=(0.0, 0.0), max_points=10)
    assert len(ax.lines) == 3 * 2 + 1  # path + end marker each, and the start
    shown = ax.lines[0].get_xydata()
    np.testing.assert_array_equal(shown[0], [0.0, 0.0])
    np.testing.assert_array_equal(shown[-1], PATHS[0, -1])
    assert len(shown) <= 2 * 10 + 1
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "c"]


def test_basins_and_phase_diagram_draw_the_data(ax):
    labels = np.array([[0, -1, -2], [1, 0, -3]])
    plotting.basins(ax, _basins(labels), extent=(0.0, 1.0, -1.0, 1.0))
    np.testing.assert_array_equal(ax.images[0].get_array(), labels.T)
    assert ax.images[0].get_extent() == [0.0, 1.0, -1.0, 1.0]
    fig, ax2 = plt.subplots()
    pd = _phase_diagram()
    plotting.phase_diagram(ax2, pd, curve=(np.array([0.1, 0.3]), np.array([0.5, 0.5])))
    np.testing.assert_array_equal(np.asarray(ax2.collections[0].get_array()).reshape(4, 3), pd.kind[:, :, 0].T)
    plt.close(fig)


def test_save_refuses_other_formats_without_touching_disk(tmp_path):
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match=r"^save: path must be a file name ending in .png, .pdf or .svg, got '.*fig.jpg'"):
        plotting.save(fig, tmp_path / "new" / "fig.jpg")
    with pytest.raises(TypeError, match=r"^save: fig must be a matplotlib Figure"):
        plotting.save(ax, tmp_path / "new" / "fig.png")
    assert not (tmp_path / "new").exists()
    ax.plot([0, 1], [1, 0])
    first = plotting.save(fig, tmp_path / "new" / "a.png").read_bytes()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    assert plotting.save(fig, tmp_path / "new" / "b.png").read_bytes() == first
