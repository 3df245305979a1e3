"""Ensembles: the mean ELF of several models, named by joining their names with "+".

`elfkit predict --model hydrogen+hydrogen-point` (or `get_model("hydrogen+hydrogen-point")`)
predicts with every member on the requested grid or points and averages their ELF. Worth it
when the members miss different things: the residuals of the U-Net and the point model on the
fluid correlate at only 0.35-0.57 per density (`elfkit evaluate`'s residual_correlation), so
their mean is closer to DFT than either. It costs the members' times added.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

from torch import nn

from elfkit.models.checkpoint import LoadedModel

SEPARATOR = "+"


class Ensemble(nn.Module):
    """Holds the members (LoadedModel) of an ensemble; `elfkit.predict` averages their ELF."""

    def __init__(self, members: list[LoadedModel]):
        super().__init__()
        self.members = members


@dataclass
class EnsembleModel(LoadedModel):
    """A LoadedModel whose `net` is an `Ensemble`; name and hash come from its members."""

    @property
    def members(self) -> list[LoadedModel]:
        """The member models, in the order named."""
        return self.net.members

    @cached_property
    def sha256(self) -> str:
        """SHA-256 (16 hex digits) of the members' hashes in order: which weights a number came from."""
        return hashlib.sha256(SEPARATOR.join(m.sha256 for m in self.members).encode()).hexdigest()[:16]


def is_ensemble_name(model) -> bool:
    """Whether a model argument names an ensemble ("a+b", no such file)."""
    from pathlib import Path

    return isinstance(model, str) and SEPARATOR in model and not Path(model).is_file()


def ensemble(members: list[LoadedModel]) -> EnsembleModel:
    """The ensemble of loaded models; its domain is the first member's."""
    name = SEPARATOR.join(m.name for m in members)
    metadata = {"name": name, "architecture": "ensemble", "members": [{"name": m.name, "sha256": m.sha256} for m in members]}
    if "domain" in members[0].metadata:
        metadata["domain"] = members[0].metadata["domain"]
    return EnsembleModel(Ensemble(members), metadata, SEPARATOR.join(m.source for m in members))


def mean_field(fields: list, metadata: dict | None = None):
    """The members' predictions (Fields on one grid) averaged into the ensemble's ELF Field."""
    import numpy as np

    from elfkit.field import Field

    return Field(fields[0].atoms.copy(), np.mean([f.values for f in fields], axis=0).astype(np.float32), "elf", metadata=metadata or {})
