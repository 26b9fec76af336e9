"""The core's settings (sdbench.core.settings): one validated loss spec, built once per cell and handed to the
kernels unchanged; the strategy's divergence applied once; and StageTimer.add (sdbench.core.timing).

    pytest tests/test_settings.py
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sdbench.config import resolve_config
from sdbench.core.settings import LossSpec, TrainingConfig
from sdbench.core.timing import StageTimer


def smoke_training(**update: object) -> TrainingConfig:
    return resolve_config(overrides={"profile": "smoke"}).training.with_overrides(
        {"steps": 1, "prompts_per_step": 2, "rollouts_per_prompt": 2, **update})


def test_the_run_configuration_uses_the_cores_settings() -> None:
    import sdbench.config

    assert sdbench.config.TrainingConfig is TrainingConfig


def test_a_cell_applies_the_strategys_divergence_and_the_tasks_temperature_once_validated() -> None:
    cell = smoke_training(jsd_beta=0.3).for_cell(divergence="jsd", temperature=0.7)
    assert cell.loss_spec == LossSpec(divergence="jsd", jsd_beta=0.3, temperature=0.7, estimator="full", topk=None,
                                      loss_impl="fused")
    assert smoke_training().for_cell() == smoke_training()          # nothing fixed: the arm's settings as they are
    # the sampled-token estimator is defined for reverse KL only: a strategy fixing jsd on such an arm is refused
    with pytest.raises(ValidationError, match="reverse_kl only"):
        smoke_training(estimator="sampled_token").for_cell(divergence="jsd")


def test_the_loss_spec_refuses_what_does_not_go_together() -> None:
    with pytest.raises(ValidationError, match="needs training.topk"):
        LossSpec(estimator="topk")
    with pytest.raises(ValidationError, match="materialized computes the full estimator only"):
        LossSpec(estimator="topk", topk=4, loss_impl="materialized")
    with pytest.raises(ValidationError, match="jsd_beta"):
        LossSpec(divergence="jsd", jsd_beta=1.5)
    assert LossSpec(estimator="topk", topk=4, loss_impl="fused_padded").topk == 4   # the oracle route is fused too


def test_the_kernel_call_keeps_the_spec_it_is_given() -> None:
    from sdbench.core.kernels._common import make_config

    spec = LossSpec(divergence="forward_kl", temperature=1.3)
    assert make_config(spec, combine="mixture", reduction="sum", vocab_size=8, has_targets=False).loss is spec
    # top-k over the whole vocabulary is the full estimator: the one case where the kernel rewrites the spec
    folded = make_config(LossSpec(estimator="topk", topk=8), combine="mixture", reduction="sum", vocab_size=8,
                         has_targets=False).loss
    assert (folded.estimator, folded.topk) == ("full", None)


def test_the_trainer_hands_one_spec_to_every_kernel_call(toy_task, monkeypatch: pytest.MonkeyPatch) -> None:
    import sdbench.core.kernels as kernels
    from sdbench.core.model import load_model
    from sdbench.core.trainer import train
    from sdbench.strategy import STRATEGIES

    seen: list[LossSpec] = []
    real = kernels.fused_linear_divergence

    def spy(*args, **kwargs):
        seen.append(kwargs["loss"])
        return real(*args, **kwargs)

    monkeypatch.setattr(kernels, "fused_linear_divergence", spy)
    cfg = smoke_training(steps=2, jsd_beta=0.25)
    model, tok = load_model(toy_task.base_model())
    train(model, tok, toy_task, STRATEGIES.get("single_sampled_demo")(), cfg, seed=0)
    assert seen, "the fused kernel was never called"
    assert all(spec is seen[0] for spec in seen) and seen[0] == cfg.loss_spec


def test_the_trainer_refuses_settings_that_contradict_the_strategys_divergence(toy_task) -> None:
    from sdbench.core.trainer import train
    from sdbench.strategy import STRATEGIES

    opsd = STRATEGIES.get("opsd")()
    assert opsd.divergence == "jsd"
    with pytest.raises(ValueError, match="fixes divergence 'jsd'"):
        train(None, None, toy_task, opsd, smoke_training(), seed=0)   # refused before any model is touched


def test_stage_timer_add_counts_time_measured_elsewhere() -> None:
    timer = StageTimer()
    timer.add("lane", 1.5)
    timer.add("lane", 0.25)
    timer.add("teacher", 2.0)
    assert timer.totals["lane_s"] == 1.75 and timer.totals["teacher_s"] == 2.0   # exact in binary floating point
    with timer("student"), timer.pause("student"):
        pass
    assert timer.totals["student_s"] >= 0.0 and timer.rounded()["lane_s"] == 1.75
