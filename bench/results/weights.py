"""The one hash of a model directory: what a cell record's `model.weights_sha256` and the gate's staleness check mean.

    from sdbench.results.weights import weights_sha256
    weights_sha256(Path("tasks/assets/graph_paths"))   # hex sha256; '' when the path is not a directory

The hash covers every file the model is loaded from: weights (.safetensors, .bin) and every .json
beside them (config, generation config, tokenizer, chat template, pretraining record), each as its
name then its bytes, in sorted order. A changed tokenizer or chat template changes what the model is
given as much as changed weights do, so both the run provenance (`sdbench.core.model.weights_hash`,
which first resolves a catalogue name) and the gate (`sdbench.gate`: its committed numbers are stale
when the hash differs) use this one definition. Anything kept in a model directory that is not the
model (the gate's own file) must live elsewhere, or it would change the hash.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

HASHED_SUFFIXES = (".safetensors", ".bin", ".json")


def weights_sha256(directory: str | Path) -> str:
    """sha256 over the model files of `directory` (see the module docstring); '' when it is not a directory
    (a hub id not on disk)."""
    root = Path(directory)
    if not root.is_dir():
        return ""
    digest = hashlib.sha256()
    for file in sorted(root.iterdir()):
        if file.suffix in HASHED_SUFFIXES:
            digest.update(file.name.encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()
