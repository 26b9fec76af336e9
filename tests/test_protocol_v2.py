"""Protocol v2: the recipe defaults, arms, the val split, kl_from_base, best-val selection, the KL frontier,
schema-1 refusal and the aggregator's light import closure. End-to-end runs are in test_runs.py and
test_reliability.py (kill and resume in the middle of a trajectory)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sdbench.config import TrainingConfig, resolve_config
from sdbench.errors import UserError
from sdbench.eval.protocol import select_best
from sdbench.results.record import EvalPoint, ProblemCounts
from sdbench.runs.aggregate import frontier_entries

EMBEDDED = ["graph_paths", "arith_target", "code_synth"]


# --- recipe and arms ------------------------------------------------------------------------------

def test_quick_profile_prints_the_field_default_recipe(capsys) -> None:
    from sdbench.cli import main

    main(["run", "--profile", "quick", "--print-config"])
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["training"]["teacher"] == "ema" and cfg["training"]["ema_tau"] == 0.05
    assert cfg["training"]["warmup_steps"] == 10 and cfg["training"]["estimator"] == "full"
    assert cfg["evaluation"]["every"] == 25
    assert (cfg["evaluation"]["val_problems"], cfg["evaluation"]["val_samples"]) == (64, 16)


def test_warmup_is_linear_then_flat() -> None:
    from sdbench.core.trainer import warmup_lr

    cfg = TrainingConfig(steps=30, prompts_per_step=1, rollouts_per_prompt=2, lr=3e-4, warmup_steps=10)
    assert [warmup_lr(cfg, s) for s in (0, 4, 9, 10, 29)] == pytest.approx([3e-5, 1.5e-4, 3e-4, 3e-4, 3e-4])
    assert warmup_lr(cfg.model_copy(update={"warmup_steps": 0}), 0) == 3e-4


@pytest.mark.parametrize(("training", "message"), [
    ({"estimator": "topk"}, "needs training.topk"),
    ({"topk": 8}, "applies only to estimator: topk"),
    ({"estimator": "sampled_token", "divergence": "jsd"}, "reverse_kl only"),
    ({"estimator": "topk", "topk": 4, "loss_impl": "materialized"}, "full estimator only"),
])
def test_estimator_settings_are_checked(training: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        resolve_config({"training": training})


def test_an_arm_overrides_training_for_its_strategy_alone() -> None:
    arms = ["base", "single_sampled_demo", {"name": "single_sampled_demo", "training": {"teacher": "live"}},
            {"name": "single_sampled_demo", "num_demos": 1, "training": {"teacher": "frozen", "lr": 1e-4}}]
    config = resolve_config({"strategies": arms[:3]})
    labels = [s.label for s in config.strategies]
    assert labels == ["base", "single_sampled_demo", "single_sampled_demo[teacher=live]"]
    assert [config.training_for(s).teacher for s in config.strategies] == ["ema", "ema", "live"]
    assert config.training_for(config.strategies[2]).lr == config.training.lr      # only what it overrides
    spec = resolve_config({"strategies": [arms[3]]}).strategies[0]
    assert spec.label == "single_sampled_demo(num_demos=1)[lr=0.0001,teacher=frozen]"
    # the hash covers the overrides: the same suite with another arm setting is another config
    frozen = {"name": "single_sampled_demo", "training": {"teacher": "frozen"}}
    other = resolve_config({"strategies": [*arms[:2], frozen]})
    assert other.config_hash() != config.config_hash()
    assert resolve_config({"strategies": arms[:3]}).config_hash() == config.config_hash()


@pytest.mark.parametrize(("arm", "message"), [
    ({"name": "grpo", "training": {"teachr": "live"}}, "did you mean 'teacher'"),
    ({"name": "grpo", "training": {"teacher": "alive"}}, "grpo\\[teacher=alive\\]"),
])
def test_a_bad_arm_is_one_clear_error(arm: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        resolve_config({"strategies": [arm]})


def test_the_same_arm_twice_is_refused() -> None:
    with pytest.raises(UserError, match="listed twice"):
        resolve_config({"strategies": ["grpo", {"name": "grpo", "training": {}}]})


def test_print_config_shows_the_arms(tmp_path: Path, capsys) -> None:
    from sdbench.cli import main

    path = tmp_path / "suite.yaml"
    path.write_text("strategies: [base, {name: single_sampled_demo, training: {teacher: live}}]\n")
    main(["run", "--config", str(path), "--print-config"])
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["strategies"][1] == {"name": "single_sampled_demo", "params": {}, "training": {"teacher": "live"}}


# --- the val split ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "distinct"), [("graph_paths", 150), ("arith_target", 147), ("code_synth", 137)])
def test_val_is_disjoint_from_the_other_splits(name: str, distinct: int) -> None:
    from sdbench.task import load_task
    from sdbench.tasks._embedded import split_of_prompt

    task = load_task(name)
    prompts = {split: {p.prompt for p in task.problems(split, 150)} for split in ("train", "val", "test", "ood")}
    for split, texts in prompts.items():
        assert all(split_of_prompt(t) == split for t in texts)
        for other, others in prompts.items():
            if other != split:
                assert not texts & others, (split, other)
    # distinct val prompts among 150 problems: arith_target's instance space (5 numbers, version 3) repeats
    # a few prompts (as its test split does), the graphs never do
    assert len(prompts["val"]) == distinct


def test_carving_val_left_the_train_split_and_the_shipped_corpus_unchanged() -> None:
    """val comes out of the test bucket, so the pretraining corpus (train problems) is the one the
    shipped model was trained on: its hash is the one recorded at pretraining time."""
    import hashlib
    import random

    from sdbench.task import load_task

    task = load_task("graph_paths")
    record = json.loads((Path(task.base_model()) / "pretrain.json").read_text())
    texts = task.pretraining_texts(random.Random(record["seed"]), 2000)
    full = task.pretraining_texts(random.Random(record["seed"]), record["corpus_size"])
    assert full[:2000] == texts
    assert hashlib.sha256("\n".join(full).encode()).hexdigest() == record["corpus_hash"]


# --- kl_from_base ------------------------------------------------------------------------------------

def test_kl_from_base_equals_a_hand_computation(toy_task) -> None:
    from sdbench.core.model import encode_prompt, load_model, tokenizer_info
    from sdbench.core.sampling import sample
    from sdbench.eval.evaluate import kl_from_base

    torch.manual_seed(0)
    base, tok = load_model(toy_task.model_dir)
    policy = copy.deepcopy(base)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.3 * torch.randn_like(p))
    info = tokenizer_info(tok)
    prompts = [encode_prompt(tok, p.prompt) for p in toy_task.problems("val", 3)]
    samples = sample(policy, prompts, num_samples=4, max_new_tokens=3, eos_id=info.eos_id, pad_id=info.pad_id,
                     generator=torch.Generator().manual_seed(1))
    got = kl_from_base(policy, base, prompts, samples, eos_id=info.eos_id, pad_id=info.pad_id)
    want = []
    for s in samples:
        completion = [*s.token_ids, info.eos_id] if s.finished else list(s.token_ids)
        ids = torch.tensor([[*prompts[s.prompt_index], *completion]])
        start = len(prompts[s.prompt_index])
        with torch.no_grad():
            lp = policy(input_ids=ids).logits[0, start - 1:-1].double().log_softmax(-1)
            lq = base(input_ids=ids).logits[0, start - 1:-1].double().log_softmax(-1)
        want.append(float((lp.exp() * (lp - lq)).sum()))
        assert len(completion) == s.num_positions
    assert got == pytest.approx(want, rel=1e-4, abs=1e-6)
    assert min(want) > 0
    assert kl_from_base(base, base, prompts, samples, eos_id=info.eos_id, pad_id=info.pad_id) == [0.0] * 12


# --- best-val selection and the frontier ----------------------------------------------------------

def _point(step: int, cs: list[int], n: int = 4, kl: float = 0.0, distinct: int | None = None) -> EvalPoint:
    return EvalPoint(step=step, n=n, problems=[
        ProblemCounts(id=f"p{i}", n=n, c=c, distinct_correct=min(c, distinct if distinct is not None else c),
                      semantic_classes=0, entropy=1.0, kl_from_base=kl) for i, c in enumerate(cs)])


def test_best_val_is_the_argmax_with_ties_to_the_earliest_step() -> None:
    assert select_best([_point(0, [1, 1]), _point(25, [3, 1]), _point(50, [1, 2])]) == 25
    assert select_best([_point(0, [2, 2]), _point(25, [3, 1]), _point(50, [4, 0])]) == 0     # all tie: step 0
    assert select_best([_point(0, [0, 0]), _point(25, [1, 3]), _point(50, [4, 0]), _point(75, [2, 2])]) == 25


def test_frontier_interpolates_each_seed_at_the_budget_over_the_seeds_that_reach_it() -> None:
    # 2 seeds x 3 points x 2 problems; mean KL per seed: seed 0 [0, .03, .08], seed 1 [0, .005, .015]
    kl = np.array([[[0, 0], [0.02, 0.04], [0.08, 0.08]], [[0, 0], [0.005, 0.005], [0.01, 0.02]]])
    pass1 = np.array([[[0.5, 0.3], [0.8, 0.6], [0.2, 0.4]], [[0.5, 0.3], [0.7, 0.7], [0.9, 0.1]]])
    distinct = np.array([[[4, 2], [3, 1], [1, 1]], [[4, 2], [4, 2], [2, 2]]], dtype=float)
    points = {step: {"kl_from_base": kl[:, t], "pass@1": pass1[:, t], "distinct_correct": distinct[:, t]}
              for t, step in enumerate((0, 25, 50))}
    out = {e["kl_budget"]: e for e in frontier_entries(points, budgets=(0.01, 0.05, 0.08, 0.2))}
    # 0.01: seed 0 crosses between points 0 and 1, w = 0.01/0.03; seed 1 between 1 and 2, w = 0.005/0.01
    w0, w1 = 1 / 3, 0.5
    s0 = (1 - w0) * pass1[0, 0] + w0 * pass1[0, 1]
    s1 = (1 - w1) * pass1[1, 1] + w1 * pass1[1, 2]
    assert out[0.01]["n_seeds_reached"] == 2
    assert out[0.01]["metrics"]["pass@1"].mean == pytest.approx(float(np.mean([s0, s1])), abs=1e-6)
    d0 = (1 - w0) * distinct[0, 0] + w0 * distinct[0, 1]
    d1 = (1 - w1) * distinct[1, 1] + w1 * distinct[1, 2]
    assert out[0.01]["metrics"]["distinct_correct"].mean == pytest.approx(float(np.mean([d0, d1])), abs=1e-6)
    # 0.05: only seed 0 reaches it (w = 0.02/0.05 between points 1 and 2); seed 1 never gets there
    w = 0.4
    assert out[0.05]["n_seeds_reached"] == 1
    assert out[0.05]["metrics"]["pass@1"].mean == pytest.approx(float(np.mean((1 - w) * pass1[0, 1] + w * pass1[0, 2])))
    # a budget met exactly at a point takes that point's values
    assert out[0.08]["metrics"]["pass@1"].mean == pytest.approx(float(pass1[0, 2].mean()))
    assert out[0.2]["n_seeds_reached"] == 0 and out[0.2]["metrics"] == {}


# --- schema 1 and layering -------------------------------------------------------------------------

def test_a_schema_1_record_is_refused_in_one_line(tmp_path: Path) -> None:
    from sdbench.runs.store import RunStore

    store = RunStore(tmp_path)
    store.cells.mkdir(parents=True)
    (store.cells / "x.json").write_text(json.dumps({"schema_version": 1, "kind": "cell", "key": "x"}))
    with pytest.raises(UserError) as info:
        list(store.records())
    assert "schema 1" in info.value.message and "\n" not in info.value.message


def test_aggregation_imports_nothing_heavier_than_numpy() -> None:
    code = ("import sys; import sdbench.runs.aggregate, sdbench.runs.report, sdbench.results.record, "
            "sdbench.runs.compare, sdbench.eval.intervals; "
            "heavy = [m for m in ('torch', 'transformers', 'sdbench.core.sampling') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


# --- the EMA teacher ----------------------------------------------------------------------------------

def test_the_ema_teacher_starts_at_the_base_and_moves_tau_per_step(toy_task, tmp_path: Path) -> None:
    from sdbench.core.model import load_model
    from sdbench.core.trainer import train
    from sdbench.strategies.single_sampled_demo import SingleSampledDemo

    torch.manual_seed(0)
    model, tok = load_model(toy_task.model_dir)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = TrainingConfig(steps=1, prompts_per_step=4, rollouts_per_prompt=4, lr=1e-2, train_problems=16,
                         checkpoint_every=1, warmup_steps=0)
    result = train(model, tok, toy_task, SingleSampledDemo(SingleSampledDemo.Params()), cfg, seed=0,
                   checkpoint=tmp_path / "ck.pt")
    assert result.log[0].trained_rollouts > 0
    state = torch.load(tmp_path / "ck.pt", weights_only=True)
    student = model.state_dict()
    moved = 0
    for name, teacher in state["teacher"].items():
        want = base[name] + 0.05 * (student[name] - base[name])
        assert torch.allclose(teacher, want, atol=1e-7), name
        moved += int(not torch.equal(student[name], base[name]))
    assert moved > 0
