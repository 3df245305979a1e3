"""Save a model file under another model name, weights unchanged, so that two models of the same
name (a shipped model and its predecessor from git history) can be evaluated side by side:

    git show 27aa040:src/elfkit/models/shipped/metals.safetensors > old.safetensors
    python scripts/rename_model.py old.safetensors metals-onehot.safetensors metals-onehot
    elfkit evaluate metals-onehot.safetensors metals metals-gpaw --split val

`elfkit evaluate` needs distinct names; the renamed file's SHA-256 differs from the original's
(its metadata changed), its predictions do not.
"""

from __future__ import annotations

import argparse

from elfkit.models.checkpoint import load_model, save_model

REWRITTEN = ("format_version", "config", "channels", "sad_table", "engine_valence_table")
"""Metadata keys `save_model` writes itself from the network."""


def main() -> None:
    """Read SOURCE, write DESTINATION with `name` (and its train config's name) set to NAME."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source")
    parser.add_argument("destination")
    parser.add_argument("name")
    args = parser.parse_args()
    loaded = load_model(args.source)
    metadata = {key: value for key, value in loaded.metadata.items() if key not in REWRITTEN}
    metadata["name"] = args.name
    if isinstance(metadata.get("train_config"), dict):
        metadata["train_config"] = {**metadata["train_config"], "name": args.name}
    save_model(args.destination, loaded.net, metadata)
    print(args.destination)


if __name__ == "__main__":
    main()
