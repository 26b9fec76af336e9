"""The trainer: it learns, it is deterministic, a checkpointed run resumes to the same weights,
and divergence is detected and reported as a failed cell, not a crash."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import smoke_training

from sdbench.core.model import load_model
from sdbench.core.trainer import TrainingDiverged, train
from sdbench.strategy import STRATEGIES, RolloutPlan, StrategyBase


def training(**update: object):
    return smoke_training(**{"steps": 6, "prompts_per_step": 4, "rollouts_per_prompt": 4, **update})


def weights(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("teacher", ["live", "ema"])
def test_checkpointed_resume_reaches_the_same_weights(toy_task, tmp_path: Path, teacher: str) -> None:
    strategy = STRATEGIES.get("single_sampled_demo")()
    straight, tok = load_model(toy_task.base_model())
    full = train(straight, tok, toy_task, strategy, training(teacher=teacher), seed=3)

    ckpt = tmp_path / "cell.pt"
    first, _ = load_model(toy_task.base_model())
    train(first, tok, toy_task, strategy, training(steps=4, checkpoint_every=2, teacher=teacher), seed=3,
          checkpoint=ckpt)                       # "killed" after step 4: last checkpoint at step 4
    assert ckpt.is_file()
    resumed, _ = load_model(toy_task.base_model())
    result = train(resumed, tok, toy_task, strategy, training(checkpoint_every=2, teacher=teacher), seed=3,
                   checkpoint=ckpt)
    assert [s.to_json() for s in result.log] == [s.to_json() for s in full.log]
    for a, b in zip(weights(straight), weights(resumed), strict=True):
        assert torch.equal(a, b)
    base, _ = load_model(toy_task.base_model())
    assert any(not torch.equal(a, b) for a, b in zip(weights(base), weights(straight), strict=True))


def test_corrupt_checkpoint_is_a_clear_error(toy_task, tmp_path: Path) -> None:
    from sdbench.errors import UserError

    ckpt = tmp_path / "bad.pt"
    ckpt.write_bytes(b"not a checkpoint")
    model, tok = load_model(toy_task.base_model())
    with pytest.raises(UserError, match="corrupt"):
        train(model, tok, toy_task, STRATEGIES.get("grpo")(), training(checkpoint_every=1), seed=0, checkpoint=ckpt)


def test_grpo_raises_reward_on_the_toy_task(toy_task) -> None:
    model, tok = load_model(toy_task.base_model())
    result = train(model, tok, toy_task, STRATEGIES.get("grpo")(),
                   training(steps=30, prompts_per_step=8, rollouts_per_prompt=8, lr=3e-3), seed=0)
    early = sum(s.reward for s in result.log[:5]) / 5
    late = sum(s.reward for s in result.log[-5:]) / 5
    assert late > early + 0.1, (early, late)


class Exploding(StrategyBase):
    """Test-only: an infinite advantage makes the loss non-finite."""

    def plan(self, group):
        return [RolloutPlan(advantage=float("inf"))] * len(group.rollouts)


def test_divergence_is_detected(toy_task) -> None:
    model, tok = load_model(toy_task.base_model())
    with pytest.raises(TrainingDiverged) as err:
        train(model, tok, toy_task, Exploding(), training(), seed=0)
    assert err.value.step == 0 and "not finite" in str(err.value)


class _Graded:
    """toy_pick whose verifier gives partial credit: a correct vowel earns 1, a correct consonant 0.5."""

    def __init__(self, task) -> None:
        self.task = task

    def __getattr__(self, name: str):
        return getattr(self.task, name)

    def verify(self, problem, completions):
        import dataclasses

        return [dataclasses.replace(v, reward=(1.0 if v.semantic_class == "vowel" else 0.5) if v.correct else 0.0)
                for v in self.task.verify(problem, completions)]


def test_a_graded_reward_reaches_the_strategy_and_defaults_to_correct(toy_task) -> None:
    from sdbench.task import Verdict

    assert Verdict(True).reward == 1.0 and Verdict(False).reward == 0.0
    with pytest.raises(ValueError, match="reward"):
        Verdict(True, reward=1.5)
    seen: list[tuple[bool, str | None, float]] = []

    class Spy(StrategyBase):
        def plan(self, group):
            seen.extend((r.correct, r.semantic_class, r.reward) for r in group.rollouts)
            return [RolloutPlan() for _ in group.rollouts]

    model, tok = load_model(toy_task.base_model())
    train(model, tok, _Graded(toy_task), Spy(Spy.Params()), training(steps=2), seed=0)
    assert len(seen) == 2 * 4 * 4
    assert {(c, s, r) for c, s, r in seen} <= {(True, "vowel", 1.0), (True, "consonant", 0.5), (False, None, 0.0)}
    assert any(r == 0.5 for _, _, r in seen)   # the fitted toy model answers consonants often


def test_micro_batches_train_the_same_run_to_float_rounding(toy_task) -> None:
    """`training.micro_batch` through the trainer: one prompt's group (4 rollouts) per forward/backward gives
    the whole-step run's weights and step log to float rounding (float32 sums in another order: the
    objective's float64 test pins the gradient itself to 1e-12). 2 steps, so the second step's rollouts are
    sampled from the first step's weights: a wrong gradient would change them."""
    strategy = STRATEGIES.get("single_sampled_demo")()
    whole, tok = load_model(toy_task.base_model())
    full = train(whole, tok, toy_task, strategy, training(steps=2), seed=5)
    micro, _ = load_model(toy_task.base_model())
    result = train(micro, tok, toy_task, strategy, training(steps=2, micro_batch=4), seed=5)
    assert [s.trained_rollouts for s in result.log] == [s.trained_rollouts for s in full.log]
    assert full.log[0].trained_rollouts > 0
    for a, b in zip(result.log, full.log, strict=True):
        assert abs(a.loss - b.loss) < 1e-5 and abs(a.divergence - b.divergence) < 1e-5 and a.reward == b.reward
    for a, b in zip(weights(micro), weights(whole), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_a_checkpoint_streams_to_disk_and_a_full_disk_is_enospc(toy_task, tmp_path: Path, monkeypatch) -> None:
    """save_checkpoint writes through a hashing writer (no copy of the state in memory) and loads back the same
    tensors; a write that fails inside torch.save surfaces as the OSError (ENOSPC) it was, which the run turns
    into its one-line disk-full error, not torch's "unexpected pos" RuntimeError."""
    import errno

    from sdbench.core import checkpoint as ckpt

    model, _ = load_model(toy_task.base_model())
    optimizer = torch.optim.AdamW(model.parameters())
    path = tmp_path / "c.pt"
    ckpt.save_checkpoint(path, step=3, model=model, optimizer=optimizer, teacher=model, log=[{"step": 0}])
    assert ckpt.checkpoint_problem(path) is None
    other, _ = load_model(toy_task.base_model())
    with torch.no_grad():
        for p in other.parameters():
            p.zero_()
    assert ckpt.load_checkpoint(path, model=other, optimizer=torch.optim.AdamW(other.parameters()),
                                teacher=other) == (3, [{"step": 0}], None)
    for a, b in zip(weights(model), weights(other), strict=True):
        assert torch.equal(a, b)

    class Full:
        written = 0

        def write(self, data) -> int:
            self.written += len(data)
            if self.written > 4096:
                raise OSError(errno.ENOSPC, "No space left on device")
            return len(data)

        def flush(self) -> None:
            pass

    monkeypatch.setattr(ckpt, "atomic_write", lambda path, write: write(Full()))
    with pytest.raises(OSError) as caught:
        ckpt.save_checkpoint(tmp_path / "d.pt", step=3, model=model, optimizer=optimizer, teacher=model, log=[])
    assert caught.value.errno == errno.ENOSPC
