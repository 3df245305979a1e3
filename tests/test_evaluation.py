"""`elfkit evaluate` on metal prototypes: maxima parity, template-score ranking, and rows per
element, prototype and volume fraction, on a tiny prototype dataset made here."""

import json

import numpy as np
import pytest
import torch
from ase.build import bulk
from typer.testing import CliRunner

from elfkit.cli import app
from elfkit.data.store import DatasetStore, Sample
from elfkit.evaluation import prototype_scores, prototype_summary, reference_topology
from elfkit.features import GE_ELF_CHANNEL, physics_channels
from elfkit.field import Field
from elfkit.models import build
from elfkit.models.checkpoint import save_model

SHAPE = (18, 18, 18)
STRUCTURES = [("bcc", "Li", 3.5, 1.0), ("bcc", "Li", 3.5, 0.6), ("fcc", "Al", 4.05, 1.0), ("fcc", "Al", 4.05, 0.6)]


def _prototype_sample(prototype: str, element: str, a: float, volume_fraction: float) -> Sample:
    """A cubic cell whose 'DFT' label is a smooth function of the gradient-expansion ELF."""
    atoms = bulk(element, prototype, a=a * volume_fraction ** (1 / 3), cubic=True)
    elf = physics_channels(atoms, SHAPE)[GE_ELF_CHANNEL] ** 1.5
    metadata = {"prototype": prototype, "volume_fraction": volume_fraction}
    return Sample(atoms, elf.astype(np.float32), -1.0, 10.0, f"{prototype}-{element}", metadata=metadata)


@pytest.fixture(scope="module")
def metal_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    store = DatasetStore(root / "tinymetals")
    for number, structure in enumerate(STRUCTURES):
        store.write_item(str(number), [_prototype_sample(*structure)])
    store.compact()
    store.write_manifest({"name": "tinymetals", "kind": "prototypes"}, fixed_split="test")
    return root


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch.manual_seed(5)
    net = build("periodic-unet", in_channels=10, width=4, dilations=(1, 2))
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.normal_(0.0, 0.1)
    return save_model(tmp_path_factory.mktemp("model") / "tinymetal.safetensors", net, {"name": "tinymetal", "architecture": "periodic-unet"})


def test_a_reference_scored_against_itself_is_perfect():
    sample = _prototype_sample("bcc", "Li", 3.5, 0.6)
    ref = Field(sample.atoms, sample.elf, "elf")
    scores = prototype_scores(ref, reference_topology(ref))
    assert scores["recall_maxima"] == 1.0 and scores["count_maxima"][0] == scores["count_maxima"][1] > 0
    assert all(a == b for a, b in scores["maxima_pairs"]) and len(scores["maxima_pairs"]) == scores["count_maxima"][1]
    assert scores["template_score"] == scores["template_score_ref"]


def _bumps(cell, sites, height: float, width: float) -> np.ndarray:
    """A Gaussian (height, width Å) of the distance to the nearest of the fractional `sites`, on SHAPE in `cell`."""
    from ase import Atoms

    from elfkit.analysis.metrics import distance_to_nearest_nucleus

    markers = Atoms(f"X{len(sites)}", scaled_positions=sites, cell=cell, pbc=True)
    return height * np.exp(-((distance_to_nearest_nucleus(markers, SHAPE) / width) ** 2))


def test_interstitial_recall_leaves_out_maxima_on_the_nuclei():
    atoms = bulk("Al", "fcc", a=4.05, cubic=True)
    holes = [(0.5, 0.5, 0.5), (0.5, 0.0, 0.0), (0.0, 0.5, 0.0), (0.0, 0.0, 0.5)]
    interstitial_part = 0.1 + _bumps(atoms.cell, holes, 0.5, 0.6)
    nuclear_part = _bumps(atoms.cell, atoms.get_scaled_positions(), 0.7, 0.15)
    reference = Field(atoms, (interstitial_part + nuclear_part).astype(np.float32), "elf")
    without_nuclei = Field(atoms, interstitial_part.astype(np.float32), "elf")
    scores = prototype_scores(without_nuclei, reference_topology(reference))
    assert scores["count_maxima"][1] == 8 and scores["count_interstitial_maxima"][1] == 4
    assert scores["recall_maxima"] == 0.5 and scores["recall_interstitial_maxima"] == 1.0
    assert len(scores["interstitial_maxima_pairs"]) == 4


def test_summary_parity_r2_and_spearman_on_known_rows():
    rows = [
        {"model": "m", "maxima_pairs": [(0.5, 0.5), (0.7, 0.9)], "recall_maxima": 1.0, "volume_fraction": 1.0, "template_score": 0.1, "template_score_ref": 0.2},
        {"model": "m", "maxima_pairs": [(0.9, 0.7)], "recall_maxima": 0.5, "volume_fraction": 1.0, "template_score": 0.3, "template_score_ref": 0.4},
        {"model": "m", "maxima_pairs": [], "recall_maxima": None, "volume_fraction": 0.5, "template_score": 0.2, "template_score_ref": 0.1},
    ]
    summary = prototype_summary(rows)["m"]
    reference = np.array([0.5, 0.9, 0.7])
    expected_r2 = 1 - 0.08 / ((reference - reference.mean()) ** 2).sum()
    assert summary["maxima_parity_r2"] == pytest.approx(expected_r2) and summary["matched_maxima"] == 3
    assert summary["recall_maxima"] == 0.75
    assert summary["template_spearman"] == pytest.approx(0.5)
    assert summary["template_spearman_per_volume"] == {"1": None, "0.5": None}


def test_evaluate_a_model_on_metal_prototypes(metal_root, tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("ELFKIT_DATA_DIR", str(metal_root))
    out = tmp_path / "metals.json"
    figure = tmp_path / "parity.png"
    result = CliRunner().invoke(app, ["evaluate", str(tiny_model), "tinymetals", "-o", str(out), "--figure", str(figure)])
    assert result.exit_code == 0, result.output
    evaluated = json.loads(out.read_text())
    strata = {row["stratum"] for row in evaluated["table"] if row["model"] == "tinymetal"}
    assert strata == {"element Li", "element Al", "prototype bcc", "prototype fcc", "V/V0 1", "V/V0 0.6", "all"}
    counts = {row["stratum"]: row["samples"] for row in evaluated["table"] if row["model"] == "tinymetal"}
    assert counts["element Li"] == counts["V/V0 0.6"] == 2 and counts["all"] == 4
    assert set(evaluated["summary"]) == {"tinymetal", "physics baseline"}
    assert -1 <= evaluated["summary"]["tinymetal"]["template_spearman"] <= 1
    assert figure.read_bytes()[:4] == b"\x89PNG"


def test_the_markdown_table_of_metals_has_the_summary(metal_root, tiny_model, monkeypatch):
    monkeypatch.setenv("ELFKIT_DATA_DIR", str(metal_root))
    result = CliRunner().invoke(app, ["evaluate", str(tiny_model), "tinymetals", "--markdown"])
    assert result.exit_code == 0, result.output
    assert "| tinymetal | element Li |" in result.output
    assert "parity R² of maxima" in result.output and "Spearman V/V0 0.6" in result.output


def test_samples_fanned_out_over_two_workers_score_as_in_one_process(metal_root, tiny_model, monkeypatch):
    from elfkit.evaluation import evaluate

    monkeypatch.setenv("ELFKIT_DATA_DIR", str(metal_root))
    alone, fanned = (evaluate(str(tiny_model), "tinymetals", workers=w) for w in (1, 2))
    assert [(r["model"], r["key"]) for r in alone["samples"]] == [(r["model"], r["key"]) for r in fanned["samples"]]
    for one, two in zip(alone["table"], fanned["table"]):
        assert one["stratum"] == two["stratum"] and one["r2"] == pytest.approx(two["r2"], abs=1e-6)
    assert fanned["summary"]["tinymetal"]["template_spearman"] == pytest.approx(alone["summary"]["tinymetal"]["template_spearman"], abs=1e-6)
