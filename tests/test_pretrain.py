"""Tests of `sdbench.pretrain` and of the shipped graph_paths base model.

Run: pytest tests/test_pretrain.py          (the slow ones too; `-m "not slow"` skips them)

The thresholds on the shipped model are the measured values with a margin for sampling noise
(numbers in the comments were measured on 100 test problems, n = 32, seed 0).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sdbench.core.model import encode_prompt, load_model, tokenizer_info
from sdbench.errors import UserError
from sdbench.pretrain import (
    base_statistics,
    build_tokenizer,
    demo_loglik_gain,
    encode_example,
    encode_examples,
    pretrain,
)
from sdbench.tasks.graph_paths import GraphPaths

TINY = {"steps": 6, "batch_size": 8, "hidden": 32, "layers": 2, "heads": 2, "corpus_size": 64}


@pytest.fixture(scope="module")
def task() -> GraphPaths:
    return GraphPaths()


@pytest.fixture(scope="module")
def shipped(task: GraphPaths):
    torch.set_num_threads(2)
    return load_model(task.base_model())


def _weights(path: Path) -> bytes:
    return (path / "model.safetensors").read_bytes()


def test_tokenizer_round_trip(task: GraphPaths, tmp_path: Path) -> None:
    problem = task.problems("test", 1)[0]
    tok = build_tokenizer([problem.prompt, problem.reference, "demo | path"])
    tok.save_pretrained(tmp_path)
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    assert (loaded.bos_token, loaded.eos_token, loaded.pad_token, loaded.unk_token) == (
        "<bos>", "<eos>", "<pad>", "<unk>")
    ids = encode_prompt(loaded, problem.prompt)
    assert ids[0] == loaded.bos_token_id and len(ids) == len(problem.prompt.split()) + 1
    assert loaded.unk_token_id not in ids
    assert loaded.decode(ids, skip_special_tokens=True) == problem.prompt
    # the completion-only loss: labels cover the completion and EOS, nothing of the prompt
    x, y, completion = encode_example(loaded, problem.prompt + "\t" + problem.reference)
    n_completion = len(problem.reference.split()) + 1
    assert len(x) == len(y) == len(completion) and x[-1] == loaded.eos_token_id
    assert y[0] == -100 and y[1:] == x[1:]
    assert completion == [0.0] * (len(x) - n_completion) + [1.0] * n_completion
    assert encode_examples(loaded, [problem.prompt + "\t" + problem.reference, "a b"]) == [
        (x, y, completion), encode_example(loaded, "a b")]


def test_pretrain_is_deterministic_and_atomic(task: GraphPaths, tmp_path: Path) -> None:
    a = pretrain(task, seed=1, out_dir=tmp_path / "a", **TINY)
    b = pretrain(task, seed=1, out_dir=tmp_path / "b", **TINY)
    c = pretrain(task, seed=2, out_dir=tmp_path / "c", **TINY)
    assert _weights(tmp_path / "a") == _weights(tmp_path / "b")
    assert a["corpus_hash"] == b["corpus_hash"] != c["corpus_hash"]
    assert a["final_loss"] == b["final_loss"]
    assert _weights(tmp_path / "a") != _weights(tmp_path / "c")
    record = json.loads((tmp_path / "a" / "pretrain.json").read_text())
    assert {"seed", "steps", "corpus_hash", "final_loss", "wall_time_s"} <= set(record)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]  # no temp dirs left over
    model, tok = load_model(str(tmp_path / "a"))
    info = tokenizer_info(tok)
    assert len({info.bos_id, info.eos_id, info.pad_id}) == 3 and model.config.vocab_size == len(tok)
    with pytest.raises(UserError, match="already exists"):
        pretrain(task, seed=1, out_dir=tmp_path / "a", **TINY)
    pretrain(task, seed=2, out_dir=tmp_path / "a", force=True, **TINY)
    assert _weights(tmp_path / "a") == _weights(tmp_path / "c")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sdbench.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["pretrain", "graph_path", "--out", str(tmp_path / "x")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown task 'graph_path'" in err and "graph_paths" in err and "Traceback" not in err
    (tmp_path / "x").mkdir()
    with pytest.raises(SystemExit):
        main(["pretrain", "graph_paths", "--out", str(tmp_path / "x")])
    assert "already exists" in capsys.readouterr().err
    main(["pretrain", "graph_paths", "--out", str(tmp_path / "y"), "--steps", "2", "--seed", "3"])
    assert json.loads((tmp_path / "y" / "pretrain.json").read_text())["steps"] == 2


def test_shipped_assets(task: GraphPaths) -> None:
    root = Path(task.base_model())
    size = sum(f.stat().st_size for f in root.iterdir())
    assert (root / "model.safetensors").is_file() and size < 10 * 2**20
    record = json.loads((root / "pretrain.json").read_text())
    assert record["seed"] == 0 and record["task"] == "graph_paths"


@pytest.mark.slow
def test_shipped_model_statistics(task: GraphPaths, shipped) -> None:
    model, tok = shipped
    stats = base_statistics(model, tok, task, task.problems("test", 100), n=32, seed=0)
    # measured (task version 3): pass@1 0.30, pass@32 1.00, distinct correct 3.8, semantic classes 1.8
    assert 0.20 <= stats["pass@1"] <= 0.60   # the gate's range on train problems, widened by 0.05 below for test
    assert stats["pass@32"] - stats["pass@1"] >= 0.15
    assert stats["distinct_correct"] >= 2.5
    assert stats["semantic_classes"] < stats["distinct_correct"]  # classes coarser than paths
    ood = base_statistics(model, tok, task, task.problems("ood", 50), n=32, seed=0)
    # measured: pass@1 0.12, pass@32 0.84 — the minority routes survive in the base model
    assert ood["pass@1"] < stats["pass@1"] and ood["pass@32"] > 0.7


@pytest.mark.slow
def test_dominant_mode_carries_the_most_mass(task: GraphPaths, shipped) -> None:
    from collections import Counter

    from sdbench.eval.evaluate import evaluate_split

    model, tok = shipped
    problems = task.problems("test", 40)
    result = evaluate_split(model, tok, task, problems, n=32, seed=1)
    dominant = top_minority = 0
    for problem in problems:
        counts = Counter(s.completion for s in result.samples if s.problem_id == problem.id and s.correct)
        dominant += counts.pop(problem.reference, 0)
        top_minority += max(counts.values(), default=0)
    correct = sum(s.correct for s in result.samples)
    uniform = sum(1 / len(p.data["paths"]) for p in problems) / len(problems)
    # measured (task version 3): the dominant route takes 0.49 of correct samples (uniform over valid
    # paths: 0.14); the largest minority route per problem 0.33
    assert dominant / correct > 2 * uniform and dominant > top_minority


@pytest.mark.slow
def test_demo_conditioning_raises_likelihood(task: GraphPaths, shipped) -> None:
    model, tok = shipped
    gains = demo_loglik_gain(model, tok, task, task.problems("test", 100))
    # measured (task version 3): canonical 1.53, minority 2.60 nats per demonstration
    assert gains["canonical"] > 0.5 and gains["minority"] > 1.0


@pytest.mark.slow
def test_reduced_pretraining_learns(task: GraphPaths, tmp_path: Path) -> None:
    problems = task.problems("test", 40)
    untrained = pretrain(task, seed=5, out_dir=tmp_path / "u", steps=1, batch_size=2, corpus_size=2)
    reduced = pretrain(task, seed=5, out_dir=tmp_path / "r", steps=700)  # 18% of the shipped 4000 steps
    scores = {}
    for name, info in (("untrained", untrained), ("reduced", reduced)):
        model, tok = load_model(info["out_dir"])
        scores[name] = base_statistics(model, tok, task, problems, n=8, seed=0)["pass@1"]
    # measured (task version 3): untrained 0.00, 400 steps 0.034, 700 steps 0.059 (the shipped 4000 steps: 0.33 on
    # train problems). The edge words are learned late, so 700 steps; 320 samples put 0.059 about 0.013 (1 sd)
    # from its mean, and 0.03 is 2 sd below it while 30x an untrained model's rate
    assert scores["untrained"] < 0.02
    assert scores["reduced"] > 0.03


def test_task_pretrain_defaults(tmp_path: Path) -> None:
    """A task's `pretrain_defaults` fill the arguments left None; explicit arguments win."""

    class Tiny(GraphPaths):
        pretrain_defaults = {"hidden": 32, "layers": 2, "heads": 2, "batch_size": 4, "corpus_size": 16}

    record = pretrain(Tiny(), seed=0, out_dir=tmp_path / "t", steps=2, layers=1)
    assert (record["hidden"], record["layers"], record["batch_size"], record["corpus_size"]) == (32, 1, 4, 16)
    assert record["lr"] == 4e-3 and record["steps"] == 2


@pytest.mark.parametrize("name", ["graph_paths", "arith_target", "code_synth"])
def test_the_default_recipe_is_the_shipped_models(name: str) -> None:
    """`sdbench pretrain NAME --seed 0` with no other option resolves to the recipe in the shipped
    model's pretrain.json, so the command reproduces what the package ships (not DEFAULTS)."""
    from sdbench.pretrain import resolve_recipe
    from sdbench.task import load_task

    task = load_task(name)
    shipped = json.loads((Path(task.base_model()) / "pretrain.json").read_text())
    recipe = resolve_recipe(task)
    for key in ("steps", "batch_size", "lr", "hidden", "layers", "prompt_weight"):
        assert recipe[key] == shipped[key], (name, key)
    assert (recipe["corpus_size"] or recipe["steps"] * recipe["batch_size"]) == shipped["corpus_size"]
