import numpy as np
import pytest

from elfkit.errors import GridError
from elfkit.grid import Grid, fft_friendly_size


def test_point_ijk_sits_at_fractional_i_over_n():
    cell = np.array([[3.0, 0.0, 0.0], [1.0, 4.0, 0.0], [0.5, 0.5, 5.0]])
    grid = Grid(cell, (4, 5, 6))
    frac = grid.frac_coords()
    assert frac.shape == (4, 5, 6, 3)
    np.testing.assert_allclose(frac[3, 2, 5], [3 / 4, 2 / 5, 5 / 6])
    np.testing.assert_allclose(grid.cart_coords()[3, 2, 5], np.array([3 / 4, 2 / 5, 5 / 6]) @ cell)
    np.testing.assert_allclose(frac[0, 0, 0], 0.0)


def test_fft_friendly_sizes_have_only_small_prime_factors():
    assert [fft_friendly_size(n) for n in (1, 7, 11, 13, 49, 97, 121)] == [1, 8, 12, 15, 50, 100, 125]


def test_spacing_rule_gives_at_most_the_requested_spacing():
    cell = np.diag([5.1, 7.3, 2.2])
    grid = Grid.for_spacing(cell, 0.12)
    assert np.all(grid.spacing <= 0.12 + 1e-12)
    assert grid.shape == (45, 64, 20)


def test_reciprocal_vectors_satisfy_g_dot_r_equals_two_pi_h():
    cell = np.array([[3.0, 0.0, 0.0], [1.0, 4.0, 0.0], [0.5, 0.5, 5.0]])
    grid = Grid(cell, (4, 6, 8))
    g = grid.reciprocal_vectors()
    np.testing.assert_allclose(g[1, 0, 0] @ cell[0], 2 * np.pi)
    np.testing.assert_allclose(g[1, 0, 0] @ cell[1], 0.0, atol=1e-12)
    np.testing.assert_allclose(g[-1, 2, 3] @ cell.T, 2 * np.pi * np.array([-1, 2, 3]))


@pytest.mark.parametrize("shape", [(0, 4, 4), (4, 4), (4, 4, "x")])
def test_bad_grids_are_refused(shape):
    with pytest.raises(GridError):
        Grid(np.eye(3), shape)


def test_resampling_a_periodic_grid_equals_the_spline_at_the_new_points():
    """`resample_periodic` (one axis at a time) gives the periodic cubic B-spline that
    `interpolate_at_points` evaluates point by point, on a skewed cell, finer and coarser, and
    returns the field itself on its own grid."""
    from elfkit.predict import interpolate_at_points, resample_periodic

    cell = np.array([[5.0, 0, 0], [1.0, 6.0, 0], [0.5, 0.3, 7.0]])
    values = np.random.default_rng(0).normal(size=(20, 24, 30)).astype(np.float32)
    for shape in [(23, 19, 31), (40, 48, 61)]:
        expected = interpolate_at_points(values, cell, Grid(cell, shape).cart_coords())
        assert np.abs(resample_periodic(values, shape) - expected).max() < 1e-5
    assert np.abs(resample_periodic(values, values.shape) - values).max() < 1e-5
