"""The settings the core runs under: `TrainingConfig` (the trainer's) and `LossSpec` (the objective's and kernels').

    training = TrainingConfig(steps=10, prompts_per_step=4, rollouts_per_prompt=8, lr=3e-4)
    training = training.for_cell(divergence="jsd", temperature=0.7)   # the strategy's / task's, validated
    train(model, tokenizer, task, strategy, training, seed=0)         # builds training.loss_spec once

The core defines them because the trainer reads them; `sdbench.config` composes `TrainingConfig` into the
run configuration (and re-exports it), so the core never imports the configuration layer.

`LossSpec` is the one description of the loss: the divergence (with a strategy's fixed one already
applied: `TrainingConfig.for_cell`), the JSD's beta, the temperature, the estimator and the implementation.
It is built once per cell from its settings (`TrainingConfig.loss_spec`, read once by the trainer),
validated, and handed unchanged from the trainer to `sdbench.core.objective` and on to the kernels
(`sdbench.core.kernels`); every field keeps one name. No torch is imported here (the configuration
layer loads this module).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from sdbench.core.divergence.names import Divergence, Estimator
from sdbench.pydantic_base import FrozenModel

TeacherWeights = Literal["live", "frozen", "ema"]
# "fused": hidden states + the output head through sdbench.core.kernels; "materialized": full logits (debugging,
# an oracle); "fused_padded": the fused kernels on the previous padded forward (an oracle for tests and benchmarks).
LossImpl = Literal["fused", "materialized", "fused_padded"]


def loss_problem(divergence: str, estimator: str, topk: int | None, loss_impl: str) -> str | None:
    """Why these loss settings do not go together (None: they do). One home for the rule, read by both
    `LossSpec` and `TrainingConfig` (whose messages name its keys)."""
    if estimator == "topk" and topk is None:
        return "the topk estimator needs training.topk"
    if estimator != "topk" and topk is not None:
        return "training.topk applies only to estimator: topk"
    if estimator == "sampled_token" and divergence != "reverse_kl":
        # The score-function estimator needs samples from the distribution the expectation is over;
        # rollouts are samples of the student, which only reverse KL averages over.
        return "the sampled_token estimator is defined for reverse_kl only"
    if estimator != "full" and loss_impl == "materialized":
        return "loss_impl: materialized computes the full estimator only; use loss_impl: fused"
    return None


class LossSpec(FrozenModel):
    """The loss of a cell: what `self_distillation_loss` and the kernels compute (hashable, validated)."""

    divergence: Divergence = "reverse_kl"
    jsd_beta: float = Field(default=0.5, ge=0, le=1, description="beta of the generalized JSD (TRL's `beta`)")
    temperature: float = Field(default=1.0, gt=0)
    estimator: Estimator = Field(default="full", description="divergence estimator of the fused kernel")
    topk: int | None = Field(default=None, ge=1, description="support size of the topk estimator")
    loss_impl: LossImpl = "fused"

    @model_validator(mode="after")
    def _fits(self) -> LossSpec:
        problem = loss_problem(self.divergence, self.estimator, self.topk, self.loss_impl)
        if problem is not None:
            raise ValueError(problem)
        return self


class TrainingConfig(FrozenModel):
    steps: int = Field(ge=0, le=1_000_000)
    prompts_per_step: int = Field(ge=1, le=4096)
    rollouts_per_prompt: int = Field(ge=2, le=1024)
    lr: float = Field(gt=0, le=1.0)
    weight_decay: float = Field(default=0.0, ge=0)
    grad_clip: float = Field(default=1.0, gt=0)
    divergence: Divergence = "reverse_kl"
    jsd_beta: float = Field(default=0.5, ge=0, le=1)
    # EMA of the student from the base weights, rate 0.05 per optimizer step: the default of TRL's
    # SDPO (teacher_model_kind="ema") and of the official SDPO; "frozen" is OPSD's / SDFT's fixed base
    # teacher, "live" the current weights (an option in the field, the default nowhere).
    teacher: TeacherWeights = "ema"
    ema_tau: float = Field(default=0.05, gt=0, le=1)
    warmup_steps: int = Field(default=10, ge=0, description="linear learning-rate warmup (optimizer steps)")
    estimator: Estimator = Field(default="full", description="divergence estimator of the fused kernel")
    topk: int | None = Field(default=None, ge=1, description="support size of the topk estimator")
    temperature: float = Field(default=1.0, gt=0)
    train_problems: int = Field(default=1000, ge=1)
    loss_impl: Literal["fused", "materialized"] = "fused"   # "materialized": full logits (debugging)
    checkpoint_every: int = Field(default=0, ge=0, description="save training state every N steps (0: never)")
    backend: Literal["hf", "vllm"] = Field(default="hf", description="sampler: transformers (any device) or vLLM (GPU)")
    max_new_tokens: int | None = Field(default=None, ge=1, le=8192,
                                       description="completion budget of rollouts and evaluation (None: the task's)")
    micro_batch: int | None = Field(default=None, ge=1, le=65536,
                                    description="rollouts per forward/backward pass within a step (gradient "
                                                "accumulation, the same gradient to float rounding; None: all)")

    @model_validator(mode="after")
    def _estimator_fits(self) -> TrainingConfig:
        problem = loss_problem(self.divergence, self.estimator, self.topk, self.loss_impl)
        if problem is not None:
            raise ValueError(problem)
        return self

    def with_overrides(self, overrides: dict[str, Any]) -> TrainingConfig:
        """These settings with an arm's overrides applied, validated as a whole."""
        return TrainingConfig.model_validate({**self.model_dump(), **overrides}) if overrides else self

    def for_cell(self, *, divergence: str | None = None, temperature: float | None = None) -> TrainingConfig:
        """The settings a cell runs with: the strategy's fixed divergence and the task's sampling temperature
        (part of the testbed: every arm samples at it) where they are given, validated as a whole."""
        fixed: dict[str, Any] = {}
        if divergence:
            fixed["divergence"] = divergence
        if temperature is not None:
            fixed["temperature"] = float(temperature)
        return self.with_overrides(fixed)

    @property
    def loss_spec(self) -> LossSpec:
        """The loss these settings describe, validated (the trainer reads it once per cell and passes it on). A
        property, not a cache: `model_copy(update=...)` copies cached values, which would then describe the
        settings copied from instead of the copy."""
        return LossSpec(divergence=self.divergence, jsd_beta=self.jsd_beta, temperature=self.temperature,
                        estimator=self.estimator, topk=self.topk, loss_impl=self.loss_impl)
