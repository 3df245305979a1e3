"""The point model: the ELF at any point from the atoms around it (seed 000's geometry-based map).

A probe point r reads every atom (periodic images included) within `cutoff` Å:

    A[n, lm](r) = sum_j B_n(d_j) f_c(d_j) g_l(d_j) Y_lm(u_j)

with d_j, u_j the distance and direction from r to atom j, B_n spherical Bessel functions of
order 0 that vanish at the cutoff, f_c a cosine cutoff, Y_lm real spherical harmonics
(l <= l_max <= 4) and g_l = 1 - exp(-(d / 0.25 Å)²) for l > 0 (so an atom sitting on the
point contributes no direction and the field stays smooth there). With `near_radial` K > 0 the
B_n are followed by K Gaussians exp(-(d / w_k)²), w_k = 0.08 Å 2^k: the Bessel functions, about
0.3 Å apart in resolution, cannot draw the engines' narrowest features at an atom (a
pseudo-density's one-grid-point spike at the nucleus, semicore shells). With `environment` E > 0 each
atom enters E + 1 times, weighted by 1 and by its `atom_environment` (smooth counts of its own
neighbours at bond-like distances), so the point sees whether the atoms around it are bound in a
molecule, stretched or alone, which angles alone resolve only coarsely. With `species` (a list of
elements, for structures of several) each atom enters once per species, weighted 1 for its own
and 0 for the others (one-hot), so every element gets its own learned radial functions; an
element not in the list is refused (`basis_weights`). With `species_rank` R > 0 those functions
are not free per element but share R learned ones: the mixing of element s is sum_d
E[s, d] M_d, with a learned embedding E (species x R), so an element seen in few structures
borrows the shape of its neighbours in E instead of fitting its own from them alone; with
`species_residual` each element also keeps free functions added on top (starting at zero; the
trainer may penalise them, pulling each element towards the shared ones). `neighbour_basis` computes A from geometry
alone; it does not depend on the network's weights, so training computes it once per point.
With `atom_features` F > 0 the model also learns each atom's environment (`LearnedEnvironment`):
F features per atom from its neighbours within `atom_cutoff` (`rounds` of message passing between
atoms), which enter a second, short-range basis of the atoms within `near_cutoff` of the point
(l <= 2); with `species`, each atom's features start from a learned vector of its element as
well. Since these depend on the network's weights, that basis is computed at every step from
the stored (point, atom) pairs (`NearPairs`).
The network mixes the radial functions per l (learned, `channels` per l), takes the
rotation invariants (the power spectrum sum_m c_klm c_k'lm of every channel pair and l),
appends the SAD's density channels at the point (`elfkit.features.point_inputs`: with `features`
sad+engine-valence also those of the labelling engine's valence SAD, as the metal U-Net) and maps
them with an MLP to a logit correction on the squashed gradient-expansion ELF, as the U-Net
does (`elfkit.models.unet`). Invariant under rotations, translations, permutations and
periodic images by construction. Lengths in Å, ELF dimensionless.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms
from ase.data import atomic_numbers
from torch import nn

from elfkit.errors import ElfkitError
from elfkit.models.prior import check_prior_floor, prior_logit

from elfkit.features import GE_ELF_CHANNEL, FeatureSet, point_input_channels

NEAR_FIELD_ANGSTROM = 0.25
NEAR_ATOM_WIDTH_ANGSTROM = 0.08
"""Width of the narrowest near-atom radial function; the k-th has 2^k times it (`near_radial`)."""
LEARNED_RADIAL = 8
"""Radial functions of the learned environment's atom-atom and near point-atom terms."""
LEARNED_L_MAX = 2
"""Angular order of the learned environment's near basis."""
ENVIRONMENT_CENTRES_ANGSTROM = (0.75, 1.1, 1.5)
ENVIRONMENT_WIDTH_ANGSTROM = 0.15


def atom_environment(atoms: Atoms, environment: int) -> np.ndarray:
    """Weights (N, 1 + environment) per atom: 1, then for each of the first `environment`
    ENVIRONMENT_CENTRES_ANGSTROM the smooth count sum_i exp(-((r_ij - centre) / width)²) of its
    neighbours i (periodic images included; width ENVIRONMENT_WIDTH_ANGSTROM)."""
    from ase.neighborlist import neighbor_list

    if not 0 <= environment <= len(ENVIRONMENT_CENTRES_ANGSTROM):
        raise ValueError(f"environment is 0 to {len(ENVIRONMENT_CENTRES_ANGSTROM)}, got {environment}")
    weights = np.ones((len(atoms), 1 + environment))
    if environment:
        centres = np.asarray(ENVIRONMENT_CENTRES_ANGSTROM[:environment])
        first, distance = neighbor_list("id", atoms, float(centres.max() + 4 * ENVIRONMENT_WIDTH_ANGSTROM))
        gaussians = np.exp(-(((distance[:, None] - centres) / ENVIRONMENT_WIDTH_ANGSTROM) ** 2))
        for k in range(environment):
            weights[:, 1 + k] = np.bincount(first, gaussians[:, k], minlength=len(atoms))
    return weights


def species_one_hot(atoms: Atoms, species: list[str]) -> np.ndarray:
    """Weights (N, len(species)): 1 in the column of each atom's element, 0 elsewhere;
    ElfkitError naming the elements of `atoms` not in `species`."""
    symbols = atoms.get_chemical_symbols()
    unknown = sorted(set(symbols) - set(species))
    if unknown:
        raise ElfkitError(f"the model knows {', '.join(species)}; {', '.join(unknown)} not among them")
    weights = np.zeros((len(atoms), len(species)))
    weights[np.arange(len(atoms)), [species.index(s) for s in symbols]] = 1.0
    return weights


def basis_weights(atoms: Atoms, environment: int = 0, species: list[str] | None = None) -> np.ndarray:
    """Weights (N, W) with which each atom enters the basis (module docstring): `species_one_hot`
    when `species` is given, else `atom_environment(atoms, environment)`."""
    return species_one_hot(atoms, species) if species else atom_environment(atoms, environment)


def present_weights(atoms: Atoms, environment: int = 0, species: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`basis_weights` reduced to the columns in which some atom weighs anything, and those
    columns' indices: the basis of the others is zero (with one-hot species, the elements absent
    from the structure), so neither it nor its mixing is computed (`PointELF.forward` columns)."""
    weights = basis_weights(atoms, environment, species)
    columns = np.flatnonzero(np.abs(weights).sum(axis=0) > 0)
    return weights[:, columns], columns


def neighbour_basis(
    atoms: Atoms,
    points: np.ndarray,
    cutoff: float,
    radial: int,
    l_max: int,
    pairs=None,
    environment: int = 0,
    atom_weights: np.ndarray | None = None,
    near_radial: int = 0,
) -> torch.Tensor:
    """A (P, (radial + near_radial) W, (l_max + 1)²) float32 at Cartesian `points` (P, 3) in Å
    (module docstring; `near_radial` Gaussians at the atoms, `_pair_terms`), W the columns of the atom weights: `atom_weights` (N, W; e.g. `present_weights`)
    or else `atom_environment(atoms, environment)`; `pairs`: the points'
    `elfkit.geometry.Neighbours` out to at least `cutoff` (found when omitted)."""
    from elfkit.geometry import point_neighbours

    points = np.asarray(points, dtype=float).reshape(-1, 3)
    pairs = point_neighbours(atoms, points, cutoff) if pairs is None else pairs.within(cutoff)
    weights = atom_environment(atoms, environment) if atom_weights is None else atom_weights
    distance = torch.from_numpy(pairs.distance).float()
    radial_terms, angular = _pair_terms(distance, torch.from_numpy(pairs.vector).float(), cutoff, radial, l_max, near_radial)
    if weights.shape[1] > 1:
        pair_weights = torch.from_numpy(weights[pairs.atom]).float()
        radial_terms = (pair_weights[:, :, None] * radial_terms[:, None, :]).flatten(1)
    radial = radial_terms.shape[1]
    counts = np.bincount(pairs.point, minlength=len(points))
    slot = torch.from_numpy(np.arange(len(pairs.point)) - np.repeat(np.cumsum(counts) - counts, counts))
    point = torch.from_numpy(pairs.point)
    width = int(counts.max(initial=1))
    padded_radial = torch.zeros((len(points), width, radial))
    padded_radial[point, slot] = radial_terms
    padded_angular = torch.zeros((len(points), width, angular.shape[1]))
    padded_angular[point, slot] = angular
    return torch.bmm(padded_radial.transpose(1, 2), padded_angular)


def _pair_terms(distance: torch.Tensor, vector: torch.Tensor, cutoff: float, radial: int, l_max: int,
                near_radial: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Radial terms (K, radial + near_radial): B_n(d) f_c(d), then the near-atom Gaussians
    exp(-(d / w_k)²) f_c(d) of widths w_k = 0.08 Å 2^k, and angular terms g_l(d) Y_lm(u)
    (K, (l_max + 1)²) of pairs at `distance` (K,) Å along `vector` (K, 3) (module docstring)."""
    angular = real_spherical_harmonics(vector / distance.clamp(min=1e-9)[:, None], l_max)
    angular[:, 1:] *= (1 - torch.exp(-((distance / NEAR_FIELD_ANGSTROM) ** 2)))[:, None]
    widths = NEAR_ATOM_WIDTH_ANGSTROM * 2.0 ** torch.arange(near_radial, dtype=distance.dtype)
    radial_terms = torch.cat([_bessel(distance, cutoff, radial), torch.exp(-((distance[:, None] / widths) ** 2))], dim=1)
    return radial_terms * _cosine_cutoff(distance, cutoff)[:, None], angular


def real_spherical_harmonics(unit: torch.Tensor, l_max: int) -> torch.Tensor:
    """Real spherical harmonics (K, (l_max + 1)²) of unit vectors (K, 3), l <= 4, normalised so
    that sum_m Y_lm² = 2l + 1 (any orthonormal real basis of each l gives the same invariants).
    l = 4 is the lowest order a cubic crystal field modulates an atom's shell with."""
    if l_max > 4:
        raise ValueError(f"l_max is at most 4, got {l_max}")
    x, y, z = unit.unbind(dim=1)
    columns = [torch.ones_like(x)]
    if l_max >= 1:
        columns += [math.sqrt(3) * x, math.sqrt(3) * y, math.sqrt(3) * z]
    if l_max >= 2:
        s15 = math.sqrt(15)
        columns += [s15 * x * y, s15 * y * z, math.sqrt(5) / 2 * (3 * z * z - 1), s15 * x * z, s15 / 2 * (x * x - y * y)]
    if l_max >= 3:
        a, b, c = math.sqrt(35 / 8), math.sqrt(105), math.sqrt(21 / 8)
        columns += [
            a * y * (3 * x * x - y * y),
            b * x * y * z,
            c * y * (5 * z * z - 1),
            math.sqrt(7) / 2 * z * (5 * z * z - 3),
            c * x * (5 * z * z - 1),
            b / 2 * z * (x * x - y * y),
            a * x * (x * x - 3 * y * y),
        ]
    if l_max >= 4:
        columns += _harmonics_l4(x, y, z)
    return torch.stack(columns, dim=1)


def _harmonics_l4(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> list[torch.Tensor]:
    """The nine real l = 4 harmonics, normalised as `real_spherical_harmonics`."""
    a, b, c, d = 3 * math.sqrt(35) / 2, 3 * math.sqrt(35 / 2) / 2, 3 * math.sqrt(5) / 2, 3 * math.sqrt(5 / 2) / 2
    zz, xx, yy = z * z, x * x, y * y
    return [
        a * x * y * (xx - yy),
        b * (3 * xx - yy) * y * z,
        c * x * y * (7 * zz - 1),
        d * y * z * (7 * zz - 3),
        3 / 8 * (35 * zz * zz - 30 * zz + 3),
        d * x * z * (7 * zz - 3),
        c / 2 * (xx - yy) * (7 * zz - 1),
        b * (xx - 3 * yy) * x * z,
        a / 4 * (xx * (xx - 3 * yy) - yy * (3 * xx - yy)),
    ]


def _bessel(distance: torch.Tensor, cutoff: float, count: int) -> torch.Tensor:
    """sin(n pi d / rc) / d * sqrt(2 / rc) for n = 1..count (its limit n pi / rc at d = 0); (K, count)."""
    n = torch.arange(1, count + 1, dtype=distance.dtype)
    return math.sqrt(2 / cutoff) * (n * math.pi / cutoff) * torch.sinc(distance[:, None] * n / cutoff)


def _cosine_cutoff(distance: torch.Tensor, cutoff: float) -> torch.Tensor:
    return 0.5 * (torch.cos(math.pi * distance / cutoff) + 1) * (distance < cutoff)


def atom_bonds(atoms: Atoms, cutoff: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Every ordered pair (i, j) of distinct atoms (periodic images included) closer than
    `cutoff` Å: indices (2, M) int64 and lengths (M,) float32 in Å."""
    from ase.neighborlist import neighbor_list

    first, second, length = neighbor_list("ijd", atoms, cutoff)
    return torch.from_numpy(np.stack([first, second]).astype(np.int64)), torch.from_numpy(length.astype(np.float32))


@dataclass
class NearPairs:
    """What the learned environment reads at probe points of one structure: the (point, atom)
    pairs closer than the near cutoff, by point (those of point p are offsets[p]:offsets[p + 1];
    `atom` (K,) int32, `vector` (K, 3) float32 from the point to the atom's image, Å), the
    structure's `atom_bonds` (`bonds` (2, M), `bond_length` (M,) Å) and its atoms' atomic
    `numbers` (N,) int64."""

    offsets: torch.Tensor
    atom: torch.Tensor
    vector: torch.Tensor
    bonds: torch.Tensor
    bond_length: torch.Tensor
    numbers: torch.Tensor

    @classmethod
    def of(cls, atoms: Atoms, pairs, point_count: int, near_cutoff: float, atom_cutoff: float, bonds=None) -> NearPairs:
        """From the `elfkit.geometry.Neighbours` of `point_count` points (out to at least
        `near_cutoff`) and the atoms; `bonds`: `atom_bonds(atoms, atom_cutoff)` when known."""
        near = pairs.within(near_cutoff)
        counts = np.bincount(near.point, minlength=point_count)
        bonds, length = atom_bonds(atoms, atom_cutoff) if bonds is None else bonds
        return cls(
            offsets=torch.from_numpy(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)),
            atom=torch.from_numpy(near.atom.astype(np.int32)),
            vector=torch.from_numpy(near.vector.astype(np.float32)),
            bonds=bonds,
            bond_length=length,
            numbers=torch.from_numpy(atoms.numbers.astype(np.int64)),
        )

    @property
    def point_count(self) -> int:
        """Probe points these pairs belong to."""
        return len(self.offsets) - 1

    def pair_points(self) -> torch.Tensor:
        """The probe point (K,) int64 of every pair."""
        return torch.repeat_interleave(torch.arange(self.point_count, device=self.offsets.device), self.offsets.diff())

    def to(self, device) -> NearPairs:
        """These pairs on `device`."""
        return NearPairs(*(t.to(device) for t in (self.offsets, self.atom, self.vector, self.bonds, self.bond_length, self.numbers)))

    def rows(self, rows: torch.Tensor) -> NearPairs:
        """The pairs of the probe points `rows` (R,), renumbered 0..R-1 in that order."""
        starts, counts = self.offsets[rows], self.offsets[rows + 1] - self.offsets[rows]
        ends = torch.cumsum(counts, 0)
        index = torch.repeat_interleave(starts - (ends - counts), counts) + torch.arange(int(ends[-1]) if len(ends) else 0)
        offsets = torch.cat([torch.zeros(1, dtype=torch.int64), ends])
        return NearPairs(offsets, self.atom[index], self.vector[index], self.bonds, self.bond_length, self.numbers)


class LearnedEnvironment(nn.Module):
    """Learned features of each atom's environment and the rotation invariants they give a
    probe point (module docstring).

    Atom j starts from h_j = MLP(sum_i B_n(r_ij) f_c(r_ij)) over its neighbours i within
    `atom_cutoff` (Bessel functions B_n as in the main basis); each further round adds
    MLP([h_j, sum_i W B(r_ij) * h_i]). At a point, N[k, lm] = sum_j (U h_j)_lk (V B(d_j)
    f_c(d_j))_lk g_l(d_j) Y_lm(u_j) over the atoms within `near_cutoff` (U, V learned: a
    feature filter times a radial filter per l and channel k, as SchNet and NequIP weigh
    messages, which costs each pair (l_max + 1) `channels` products instead of a full
    features x radial mixing), and the invariants are the power spectrum
    sum_m N[k, lm] N[k', lm] of every channel pair and l, signed log1p. With `species` (a list
    of elements) each atom's first h_j also adds a learned vector of its element, so the rounds
    tell a point how each atom sits among neighbours of which elements (how compressed it is
    for its size), not only where they are."""

    def __init__(self, features: int, atom_cutoff: float, near_cutoff: float, channels: int, rounds: int,
                 species: list[str] | None = None):
        super().__init__()
        if rounds < 1:
            raise ValueError(f"a learned environment runs at least one round, got {rounds}")
        self.atom_cutoff, self.near_cutoff, self.channels = atom_cutoff, near_cutoff, channels
        self.embed = nn.Sequential(nn.Linear(LEARNED_RADIAL, features), nn.SiLU(), nn.Linear(features, features))
        self.filters = nn.ModuleList(nn.Linear(LEARNED_RADIAL, features, bias=False) for _ in range(rounds - 1))
        self.updates = nn.ModuleList(
            nn.Sequential(nn.Linear(2 * features, features), nn.SiLU(), nn.Linear(features, features)) for _ in range(rounds - 1)
        )
        self.feature_filter = nn.Linear(features, (LEARNED_L_MAX + 1) * channels, bias=False)
        self.radial_filter = nn.Linear(LEARNED_RADIAL, (LEARNED_L_MAX + 1) * channels, bias=False)
        self.element = nn.Embedding(len(species), features) if species else None
        self.element_numbers = [atomic_numbers[s] for s in species or []]

    @property
    def size(self) -> int:
        """Invariants per point."""
        return self.channels * self.channels * (LEARNED_L_MAX + 1)

    def atom_features(self, bonds: torch.Tensor, bond_length: torch.Tensor, numbers: torch.Tensor) -> torch.Tensor:
        """Features (N, F) of the atoms of atomic `numbers` (N,) from their `atom_bonds` (2, M)
        of lengths (M,) Å (with `species`, only elements of that list: `basis_weights` refuses others)."""
        first, second = bonds
        radial = _bessel(bond_length, self.atom_cutoff, LEARNED_RADIAL) * _cosine_cutoff(bond_length, self.atom_cutoff)[:, None]
        counts = torch.zeros(len(numbers), LEARNED_RADIAL, device=radial.device).index_add_(0, first, radial)
        features = self.embed(counts)
        if self.element is not None:
            known = torch.tensor(self.element_numbers, device=numbers.device)
            features = features + self.element((numbers[:, None] == known).int().argmax(dim=1))
        for weights, update in zip(self.filters, self.updates):
            messages = torch.zeros_like(features).index_add_(0, first, weights(radial) * features[second])
            features = features + update(torch.cat([features, messages], dim=1))
        return features

    def invariants(self, near: NearPairs, atom_features: torch.Tensor) -> torch.Tensor:
        """Invariants (P, `size`) at the points of `near`, from the atoms' features (N, F)."""
        radial, angular = _pair_terms(near.vector.norm(dim=1), near.vector, self.near_cutoff, LEARNED_RADIAL, LEARNED_L_MAX)
        weights = (self.feature_filter(atom_features)[near.atom.long()] * self.radial_filter(radial)).view(-1, LEARNED_L_MAX + 1, self.channels)
        point = near.pair_points()
        spectra = []
        for l in range(LEARNED_L_MAX + 1):
            terms = weights[:, l, :, None] * angular[:, None, l * l : (l + 1) ** 2]
            summed = torch.zeros(near.point_count, self.channels, 2 * l + 1, device=terms.device).index_add_(0, point, terms)
            spectra.append(torch.einsum("pkm,pjm->pkj", summed, summed).flatten(1))
        power = torch.cat(spectra, dim=1)
        return torch.sign(power) * torch.log1p(power.abs())


class PointELF(nn.Module):
    """ELF logits at probe points from `neighbour_basis` (P, radial W, (l_max + 1)²) and the
    density channels at the points (P, C: `input_channels`); see the module docstring."""

    def __init__(
        self,
        cutoff: float = 4.0,
        radial: int = 16,
        l_max: int = 3,
        channels: int = 8,
        hidden: int = 128,
        layers: int = 3,
        prior_floor: float = 0.05,
        environment: int = 0,
        species: list[str] | None = None,
        features: str = FeatureSet.SAD.value,
        atom_features: int = 0,
        atom_cutoff: float = 2.0,
        near_cutoff: float = 2.0,
        rounds: int = 1,
        species_rank: int = 0,
        species_residual: bool = False,
        near_radial: int = 0,
    ):
        super().__init__()
        check_prior_floor(prior_floor)
        if species and environment:
            raise ValueError("a point model weighs atoms by species or by their environment, not both")
        if species_rank and not species:
            raise ValueError("species_rank shares radial functions between species: it needs species")
        if species_residual and not species_rank:
            raise ValueError("species_residual adds free functions to shared ones: it needs species_rank")
        self.config = {
            "cutoff": cutoff,
            "radial": radial,
            "l_max": l_max,
            "channels": channels,
            "hidden": hidden,
            "layers": layers,
            "prior_floor": prior_floor,
            "environment": environment,
        }
        if species:
            self.config["species"] = list(species)
        if species_rank:
            self.config["species_rank"] = species_rank
        if species_residual:
            self.config["species_residual"] = True
        if near_radial:
            self.config["near_radial"] = near_radial
        if FeatureSet(features) != FeatureSet.SAD:
            self.config["features"] = FeatureSet(features).value
        if atom_features:
            self.config |= {"atom_features": atom_features, "atom_cutoff": atom_cutoff, "near_cutoff": near_cutoff, "rounds": rounds}
        self.cutoff, self.radial, self.l_max, self.prior_floor = cutoff, radial, l_max, prior_floor
        self.near_radial, functions = near_radial, radial + near_radial
        self.environment, self.species, self.features = environment, list(species or []), FeatureSet(features)
        self.input_channels = point_input_channels(features)
        basis_radial = functions * (len(species) if species else 1 + environment)
        self.species_rank = species_rank
        if species_rank:
            self.shared_mixing = nn.Parameter(torch.randn(l_max + 1, channels, species_rank, functions) / math.sqrt(basis_radial))
            self.species_embedding = nn.Parameter(torch.randn(len(species), species_rank) / math.sqrt(species_rank))
        if species_residual:
            self.mixing = nn.Parameter(torch.zeros(l_max + 1, channels, basis_radial))
        elif not species_rank:
            self.mixing = nn.Parameter(torch.randn(l_max + 1, channels, basis_radial) / math.sqrt(basis_radial))
        self.learned = LearnedEnvironment(atom_features, atom_cutoff, near_cutoff, channels, rounds, species) if atom_features else None
        learned_size = self.learned.size if self.learned else 0
        sizes = [channels * channels * (l_max + 1) + learned_size + len(self.input_channels)] + [hidden] * layers
        mlp: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            mlp += [nn.Linear(a, b), nn.SiLU()]
        self.mlp = nn.Sequential(*mlp, nn.Linear(hidden, 1))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def invariants(self, basis: torch.Tensor, columns: torch.Tensor | None = None) -> torch.Tensor:
        """Rotation invariants (P, channels² (l_max + 1)), signed log1p of the power spectrum.
        `columns`: the basis holds only these atom-weight columns (the others are zero: with
        one-hot species, the elements absent from the structure), so only they are mixed."""
        mixing = self.radial_mixing() if columns is None else self.radial_mixing()[:, :, self._radial_index(columns)]
        spectra = []
        for l in range(self.l_max + 1):
            block = basis[:, :, l * l : (l + 1) ** 2]
            mixed = torch.einsum("pnm,kn->pkm", block, mixing[l])
            spectra.append(torch.einsum("pkm,pjm->pkj", mixed, mixed).flatten(1))
        power = torch.cat(spectra, dim=1)
        return torch.sign(power) * torch.log1p(power.abs())

    def radial_mixing(self) -> torch.Tensor:
        """The learned mixing (l_max + 1, channels, basis radial) of the basis' radial functions
        into channels per l; with `species_rank`, each species' block from the shared functions."""
        if not self.species_rank:
            return self.mixing
        shared = torch.einsum("lkdn,sd->lksn", self.shared_mixing, self.species_embedding).flatten(2)
        return shared + self.mixing if self.config.get("species_residual") else shared

    def species_residual_square(self) -> torch.Tensor:
        """Mean square of the free per-species radial functions (`species_residual`), the term
        `species_residual_decay` penalises in training."""
        return self.mixing.square().mean()

    def _radial_index(self, columns: torch.Tensor) -> torch.Tensor:
        """Indices into the basis' radial axis (weight-major, radial-minor) of atom-weight `columns`."""
        functions = self.radial + self.near_radial
        return (torch.as_tensor(columns)[:, None] * functions + torch.arange(functions)).flatten()

    def prior(self, ge_elf: torch.Tensor) -> torch.Tensor:
        """The prior logit of the gradient-expansion ELF, squashed into [floor, 1 - floor]."""
        return prior_logit(ge_elf, self.prior_floor)

    @property
    def descriptor(self) -> dict:
        """What this network's basis depends on (cutoff in Å, radial, near_radial, l_max, the atom weights'
        environment and species: `present_weights`; and the `NearPairs` cutoffs in Å of a
        learned environment, else None)."""
        near = {"near_cutoff": self.learned.near_cutoff, "atom_cutoff": self.learned.atom_cutoff} if self.learned else None
        return {"cutoff": self.cutoff, "radial": self.radial, "near_radial": self.near_radial, "l_max": self.l_max, "environment": self.environment,
                "species": self.species or None, "near": near}

    def forward(self, basis: torch.Tensor, density: torch.Tensor, columns: torch.Tensor | None = None,
                near: NearPairs | None = None) -> torch.Tensor:
        """Logits (P,) from the basis (P, radial W, (l_max + 1)²), or only its atom-weight
        `columns` (P, radial len(columns), (l_max + 1)²; the same logits), density channels
        (P, C) and, with a learned environment, the points' `NearPairs`. Under autocast (a
        config with bf16) only the hidden layers run in low precision: the invariants (products
        of sums over neighbours), the output layer and the prior stay float32."""
        learned = None
        if self.learned:
            learned = self.learned.invariants(near, self.learned.atom_features(near.bonds, near.bond_length, near.numbers))
        return self._logits(basis, density, columns, learned)

    def _logits(self, basis: torch.Tensor, density: torch.Tensor, columns: torch.Tensor | None, learned: torch.Tensor | None) -> torch.Tensor:
        with torch.autocast(basis.device.type, enabled=False):
            parts = [self.invariants(basis.float(), columns)] + ([learned.float()] if learned is not None else [])
            features = torch.cat([*parts, density.float()], dim=1)
        hidden = self.mlp[:-1](features)
        with torch.autocast(basis.device.type, enabled=False):
            correction = self.mlp[-1](hidden.float())[:, 0]
            return correction + self.prior(density[:, GE_ELF_CHANNEL].float())

    @torch.no_grad()
    def logits_at(self, atoms: Atoms, points: np.ndarray, batch: int = 1024) -> np.ndarray:
        """ELF logits (P,) at Cartesian `points` (P, 3) in Å, `batch` points at a time (with
        engine-valence `features`, those of the engine `elfkit dft` would label `atoms` with)."""
        from elfkit.features import point_inputs, point_inputs_radius, prediction_engine
        from elfkit.geometry import PeriodicImages

        points = np.asarray(points, dtype=float).reshape(-1, 3)
        weights, columns = present_weights(atoms, self.environment, self.species or None)
        engine = prediction_engine(atoms) if self.features != FeatureSet.SAD else None
        images = PeriodicImages(atoms, max(self.cutoff, point_inputs_radius(atoms, self.features, engine)))
        if self.learned:
            bonds = atom_bonds(atoms, self.learned.atom_cutoff)
            atom_features = self.learned.atom_features(*bonds, torch.from_numpy(atoms.numbers.astype(np.int64)))
        out = np.empty(len(points), dtype=np.float32)
        for start in range(0, len(points), batch):
            chunk = points[start : start + batch]
            pairs = images.neighbours(chunk)
            basis = neighbour_basis(atoms, chunk, self.cutoff, self.radial, self.l_max, pairs, atom_weights=weights,
                                    near_radial=self.near_radial)
            density = torch.from_numpy(point_inputs(atoms, chunk, self.features, engine, pairs).T.copy())
            learned = None
            if self.learned:
                near = NearPairs.of(atoms, pairs, len(chunk), self.learned.near_cutoff, self.learned.atom_cutoff, bonds)
                learned = self.learned.invariants(near, atom_features)
            out[start : start + len(chunk)] = self._logits(basis, density, torch.from_numpy(columns), learned).numpy()
        return out
