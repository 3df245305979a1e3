"""The shipped models load offline from the package and predict held-out DFT data."""

from pathlib import Path

import numpy as np
import pytest

import elfkit.data
from elfkit.models.checkpoint import load_model, shipped_models
from elfkit.predict import domain_warnings, predict


REPO = Path(__file__).resolve().parents[1]
SHIPPED_HYDROGEN = ["hydrogen", "hydrogen-point"]


@pytest.mark.parametrize("name", SHIPPED_HYDROGEN)
def test_the_hydrogen_models_are_shipped_with_their_cards_and_metadata(name):
    assert name in shipped_models()
    path = shipped_models()[name]
    assert path.stat().st_size < 20 * 2**20
    assert path.with_suffix(".md").is_file()
    metadata = load_model(name).metadata
    assert metadata["domain"]["elements"] == ["H"]
    assert metadata["datasets"][0]["name"] == "hydrogen-fluid"


@pytest.mark.parametrize("name", SHIPPED_HYDROGEN)
def test_the_hydrogen_models_predict_a_crystal_they_never_saw(name):
    """A Cmca-12 crystal at 303 GPa (the transfer set; the models trained on the fluid only)."""
    sample = next(s for s in elfkit.data.open("hydrogen-crystals") if s.group == "crystal-Cmca-12" and s.pressure_gpa < 350)
    pred = predict(sample.atoms, sample.elf.shape, name).values
    residual = pred - sample.elf
    r2 = 1 - (residual**2).sum() / ((sample.elf - sample.elf.mean()) ** 2).sum()
    assert r2 > 0.9 and np.abs(residual).mean() < 0.05
    assert domain_warnings(sample.atoms, name) == []


def test_structures_outside_the_domain_are_named(lah10):
    warnings = domain_warnings(lah10, "hydrogen")
    assert any("La" in w for w in warnings)


def test_a_crystal_scored_against_itself_has_perfect_topology_and_the_baseline_does_not():
    """`evaluate`'s crystal scores: the reference against itself recalls every maximum and
    saddle with no networking-value error; the physics baseline misses some."""
    from elfkit.evaluation import baseline_field, reference_topology, topology_scores
    from elfkit.field import Field

    sample = next(s for s in elfkit.data.open("hydrogen-crystals") if s.group == "crystal-I4_1/amd")
    ref = Field(sample.atoms, sample.elf, "elf")
    reference = reference_topology(ref)
    own = topology_scores(ref, reference)
    assert own["recall_maxima"] == own["recall_saddles"] == 1.0 and own["networking_value_error"] == 0.0
    assert own["value_error_maxima"] == own["value_error_saddles"] == 0.0 and own["count_saddles"][0] == own["count_saddles"][1]
    baseline = topology_scores(baseline_field(sample.atoms, sample.elf.shape), reference)
    assert baseline["networking_value_error"] > 0.01 or baseline["recall_saddles"] < 1.0


def test_the_metals_model_is_shipped_with_its_card_and_the_three_metal_datasets():
    assert "metals" in shipped_models()
    path = shipped_models()["metals"]
    assert path.stat().st_size < 20 * 2**20
    assert path.with_suffix(".md").is_file()
    metadata = load_model("metals").metadata
    assert [d["name"] for d in metadata["datasets"]] == ["metals", "metals-900", "metals-gpaw"]
    assert metadata["train_config"]["model"]["features"] == "sad+engine-valence+shell-field"
    assert {"La", "Y", "Ca"} <= set(metadata["domain"]["elements"]) and "H" not in metadata["domain"]["elements"]


def test_the_metals_model_predicts_a_held_out_light_metal_cell():
    """The first test-split cell of `metals` (QE labels), predicted on its own grid."""
    sample = next(iter(elfkit.data.open("metals", split="test")))
    pred = predict(sample.atoms, sample.elf.shape, "metals").values
    assert pred.min() >= 0.0 and pred.max() <= 1.0
    residual = pred - sample.elf
    assert 1 - (residual**2).sum() / ((sample.elf - sample.elf.mean()) ** 2).sum() > 0.8
    assert domain_warnings(sample.atoms, "metals") == []


def test_the_metals_model_refuses_hydrogen_and_takes_the_metal_sublattice(lah10):
    from elfkit.errors import ElfkitError
    from elfkit.predict import check_elements

    with pytest.raises(ElfkitError, match="LaH10: model metals has no weights for H"):
        check_elements(lah10, "metals", "LaH10")
    metal_sublattice = lah10[[s != "H" for s in lah10.get_chemical_symbols()]]
    check_elements(metal_sublattice, "metals")
    assert domain_warnings(metal_sublattice, "metals") == []


@pytest.mark.parametrize("command", [["predict", "-o", "{out}/x.cube"], ["screen", "--output", "{out}/screen"]])
def test_the_metals_model_refuses_hydrogen_in_one_line_naming_the_file(command, tmp_path):
    """A species model has no weights for an element it never saw; LaH10 with its H is refused."""
    from typer.testing import CliRunner

    from elfkit.cli import app

    example = "examples/LaH10_Fm-3m_170GPa.cif"
    arguments = [command[0], str(REPO / example), "--model", "metals", *[a.format(out=tmp_path) for a in command[1:]]]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"elfkit: error: {REPO / example}") and "model metals has no weights for H (it knows " in line
    assert line.endswith("; for a hydride, screen its metal sublattice (elfkit screen --strip H)")
    assert list(tmp_path.iterdir()) == []
