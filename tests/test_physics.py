import numpy as np
import pytest

from elfkit.physics import elf_from_density


def _axes(n=40, half=3.0):
    x = np.linspace(-half, half, n)
    return x, np.meshgrid(x, x, x, indexing="ij")


def _sigma_g(points, bond=1.4):
    """Unnormalised LCAO sigma_g orbital of H2 (bohr) and its analytic gradient."""
    x, y, z = points
    phi, grad = 0.0, np.zeros((3, *x.shape))
    for zc in (-bond / 2, bond / 2):
        r = np.sqrt(x**2 + y**2 + (z - zc) ** 2) + 1e-12
        e = np.exp(-r)
        phi = phi + e
        grad -= e * np.stack([x, y, z - zc]) / r
    return phi, grad


def test_a_single_doubly_occupied_orbital_gives_elf_one_everywhere():
    _, points = _axes()
    phi, grad = _sigma_g(points)
    rho, grad_rho, tau = 2 * phi**2, 4 * phi * grad, (grad**2).sum(axis=0)
    elf = elf_from_density(rho, grad_rho, tau)
    assert np.allclose(elf[rho > 1e-4], 1.0, atol=1e-9)


def test_h2_elf_is_one_at_the_bond_with_numerical_gradients():
    x, points = _axes(n=61)
    phi, _ = _sigma_g(points)
    h = x[1] - x[0]
    grad_phi = np.array(np.gradient(phi, h))
    rho = 2 * phi**2
    grad_rho = np.array(np.gradient(rho, h))
    tau = (grad_phi**2).sum(axis=0)
    elf = elf_from_density(rho, grad_rho, tau)
    centre = len(x) // 2
    assert elf[centre, centre, centre] == pytest.approx(1.0, abs=2e-3)


def test_two_orbitals_of_different_shape_give_elf_below_one():
    """Checks that the one-orbital tests above could fail: 1s + 2p_z is not one orbital."""
    _, (x, y, z) = _axes()
    r = np.sqrt(x**2 + y**2 + z**2) + 1e-12
    s, p = np.exp(-r), z * np.exp(-r / 2)
    grad_s = -np.exp(-r) * np.stack([x, y, z]) / r
    grad_p = np.exp(-r / 2) * (np.stack([0 * x, 0 * y, 1 + 0 * z]) - z * np.stack([x, y, z]) / (2 * r))
    rho = 2 * (s**2 + p**2)
    grad_rho = 4 * (s * grad_s + p * grad_p)
    tau = (grad_s**2).sum(0) + (grad_p**2).sum(0)
    elf = elf_from_density(rho, grad_rho, tau)
    assert elf[rho > 1e-4].min() < 0.3


def test_uniform_electron_gas_from_plane_waves_gives_one_half():
    """Fill a Fermi sphere of plane waves in a periodic box (2 electrons each): the kinetic
    energy density approaches the Thomas-Fermi value and the ELF approaches 0.5."""
    length = 10.0
    n = np.arange(-20, 21)
    kx, ky, kz = np.meshgrid(n, n, n, indexing="ij")
    k2 = (2 * np.pi / length) ** 2 * (kx**2 + ky**2 + kz**2)
    occupied = k2[k2 <= np.sort(k2.ravel())[20000]]
    volume = length**3
    rho = np.array([2 * occupied.size / volume])
    tau = np.array([occupied.sum() / volume])
    elf = elf_from_density(rho, np.zeros((3, 1)), tau)
    assert elf[0] == pytest.approx(0.5, abs=0.005)


def test_spin_polarised_formula_reduces_to_the_unpolarised_one_for_equal_spins():
    rng = np.random.default_rng(0)
    rho = rng.random(50) + 0.01
    grad = rng.normal(size=(3, 50)) * 0.1
    tau = rng.random(50) + (grad**2).sum(0) / (8 * rho)
    unpolarised = elf_from_density(rho, grad, tau)
    polarised = elf_from_density(
        np.stack([rho / 2, rho / 2]), np.stack([grad / 2, grad / 2]), np.stack([tau / 2, tau / 2]), spin_polarized=True
    )
    np.testing.assert_allclose(polarised, unpolarised, rtol=1e-12)


def test_one_electron_fully_polarised_hydrogen_atom_gives_one():
    _, (x, y, z) = _axes()
    r = np.sqrt(x**2 + y**2 + z**2) + 1e-12
    phi = np.exp(-r) / np.sqrt(np.pi)
    grad = -phi * np.stack([x, y, z]) / r
    zero = np.zeros_like(phi)
    elf = elf_from_density(
        np.stack([phi**2, zero]),
        np.stack([2 * phi * grad, np.zeros_like(grad)]),
        np.stack([0.5 * (grad**2).sum(0), zero]),
        spin_polarized=True,
    )
    assert np.allclose(elf[phi**2 > 1e-4], 1.0, atol=1e-9)


def test_values_stay_in_zero_one_and_vacuum_is_zero():
    rng = np.random.default_rng(1)
    rho = 10.0 ** rng.uniform(-9, 1, 1000)
    grad = rng.normal(size=(3, 1000)) * rho
    tau = rng.normal(size=1000)
    elf = elf_from_density(rho, grad, tau)
    assert elf.min() >= 0.0 and elf.max() <= 1.0
    assert np.all(elf[rho < 1e-6] == 0.0)


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="shapes"):
        elf_from_density(np.ones(4), np.ones((4,)), np.ones(4))
