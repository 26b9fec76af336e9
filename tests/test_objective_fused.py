"""The fused objective equals the materialized objective: loss and every parameter gradient, for each
kind of plan the strategies produce, with a live and with a separate (frozen/EMA) teacher."""

from __future__ import annotations

import copy

import pytest
import torch

from sdbench.core.model import encode_prompt, load_model
from sdbench.core.objective import LossItem, LossSpec, self_distillation_loss
from sdbench.core.objective_fused import fused_supported
from sdbench.strategy import RolloutPlan, TeacherContext


@pytest.fixture(scope="module")
def model_tok(toy_model_dir: str):
    model, tok = load_model(toy_model_dir, dtype=torch.float64)
    return model, tok


def batch(tok, plans: list[RolloutPlan]) -> list[LossItem]:
    items = []
    answers = ["a", "c", "e", "c", "a"]
    for k, plan in enumerate(plans):
        letters = "a c e" if k % 2 == 0 else "b c d"
        prompt = encode_prompt(tok, f"pick {letters} :")
        completion = [tok.convert_tokens_to_ids(answers[k % 5]), tok.eos_token_id][: 1 + k % 2]
        texts = [(" ".join(f"demo {d} ;" for d in t.demos) + f" pick {letters} :") if t.with_question
                 else " ".join(f"demo {d} ;" for d in t.demos) + " :" for t in plan.teachers]
        items.append(LossItem(prompt, completion, plan, tuple(encode_prompt(tok, t) for t in texts)))
    return items


D = TeacherContext
PLANS = {
    "single": [RolloutPlan(teachers=(D(("c",)),)), RolloutPlan(), RolloutPlan(teachers=(D(("a",)),))],
    "mixture": [RolloutPlan(teachers=(D(("c",)), D(("a",), 3.0)), combine="mixture"),
                RolloutPlan(teachers=(D(("e",)),))],
    "logmean": [RolloutPlan(teachers=(D(("c",)), D(("a",)), D(("e", "c"))), combine="logmean"),
                RolloutPlan(teachers=(D(("e",)),), combine="logmean")],
    "gated": [RolloutPlan(teachers=(D(("c",)),), teacher_entropy_gate=(0.0, 1.2)),
              RolloutPlan(teachers=(D(("a",)),), distill_weight=-1.0, teacher_entropy_gate=(1.0, 9.0)),
              RolloutPlan(teachers=(D(("e",)),))],
    "signed_logmean": [RolloutPlan(teachers=(D(("c",)), D(("c",), -0.5, False), D((), 0.5)), combine="logmean"),
                       RolloutPlan(teachers=(D(("a",)),), combine="logmean")],
    "mixed_modes": [RolloutPlan(teachers=(D(("c",)), D(("a",))), combine="mixture"),
                    RolloutPlan(teachers=(D(("c",)), D(("a",))), combine="logmean")],
    "entropy_sign_pg": [RolloutPlan(teachers=(D(("c",)),), entropy_coef=0.3),
                        RolloutPlan(teachers=(D(("a",)),), distill_weight=-0.5),
                        RolloutPlan(advantage=1.5), RolloutPlan(teachers=(D(("c",)),), distill_weight=0.4,
                                                                advantage=-0.7)],
}


def grads(model, loss) -> list[torch.Tensor]:
    model.zero_grad()
    loss.backward()
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]


CASES = [(d, c, sep) for c in sorted(PLANS) for d in ("reverse_kl", "forward_kl", "jsd") for sep in (False, True)
         if d == "reverse_kl" or c in ("single", "entropy_sign_pg")]


@pytest.mark.parametrize(("divergence", "separate_teacher"), [("reverse_kl", False), ("jsd", True)])
def test_policy_gradient_with_recomputed_logits_equals_materialized(model_tok, monkeypatch, divergence: str,
                                                                 separate_teacher: bool) -> None:
    # The large-vocabulary route of the policy-gradient term: chunks of logits recomputed in backward.
    import sdbench.core.scoring as scoring

    monkeypatch.setattr(scoring, "KEEP_LOGITS_BELOW", 0)
    monkeypatch.setattr(scoring, "CHUNK", 7)
    test_fused_equals_materialized(model_tok, divergence, "entropy_sign_pg", separate_teacher)


@pytest.mark.parametrize(("divergence", "case", "separate_teacher"), CASES)
def test_fused_equals_materialized(model_tok, divergence: str, case: str, separate_teacher: bool) -> None:
    model, tok = model_tok
    teacher = model
    if separate_teacher:
        teacher = copy.deepcopy(model)
        with torch.no_grad():
            for p in teacher.parameters():
                p.add_(0.01 * torch.randn_like(p, generator=None))
    items = batch(tok, PLANS[case])
    assert fused_supported(items)
    spec = LossSpec(divergence=divergence, jsd_beta=0.3, temperature=1.3, loss_impl="materialized")
    ref, ref_stats = self_distillation_loss(model, teacher, items, spec, pad_id=tok.pad_token_id)
    ref_grads = grads(model, ref)
    fused, fused_stats = self_distillation_loss(model, teacher, items, spec.model_copy(update={"loss_impl": "fused"}),
                                                pad_id=tok.pad_token_id)
    fused_grads = grads(model, fused)
    assert fused_stats.entropy is None and ref_stats.entropy is not None   # the fused path really ran
    torch.testing.assert_close(fused.double(), ref.double(), rtol=1e-9, atol=1e-12)
    for a, b in zip(fused_grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-10)
    assert any(g.abs().sum() > 0 for g in ref_grads)


def test_plans_the_kernel_cannot_express_fall_back_to_the_materialized_route(model_tok) -> None:
    model, tok = model_tok
    bonus_only = batch(tok, [RolloutPlan(entropy_coef=0.2)])
    for items in (bonus_only,):
        assert not fused_supported(items)
        loss, stats = self_distillation_loss(model, model, items, LossSpec(loss_impl="fused"), pad_id=tok.pad_token_id)
        ref, _ = self_distillation_loss(model, model, items, LossSpec(loss_impl="materialized"),
                                        pad_id=tok.pad_token_id)
        assert stats.entropy is not None and float(loss.detach()) == pytest.approx(float(ref.detach()), rel=1e-12)


@pytest.mark.parametrize("impl", ["fused", "materialized"])
@pytest.mark.parametrize("size", [1, 2, 3])
def test_micro_batched_backward_is_the_whole_step_gradient(model_tok, impl: str, size: int) -> None:
    """Gradient accumulation over micro-batches (`training.micro_batch`): the same gradient and the same
    combined LossStats as one backward of the whole step, in float64 (to ~1e-12). Batches of 1, 2 and 3 of
    the 7 rollouts (two plan mixes concatenated): uneven last batches, batches with and without distillation,
    one rollout with no active plan."""
    from sdbench.core.objective import micro_batched_backward

    model, tok = model_tok
    teacher = copy.deepcopy(model)
    with torch.no_grad():
        for p in teacher.parameters():
            p.add_(0.01 * torch.randn_like(p, generator=None))
    items = batch(tok, PLANS["entropy_sign_pg"] + PLANS["single"])     # "single" has an inactive plan
    spec = LossSpec(temperature=1.3, loss_impl=impl)
    whole, whole_stats = self_distillation_loss(model, teacher, items, spec, pad_id=tok.pad_token_id)
    whole_grads = grads(model, whole)
    model.zero_grad()
    stats = micro_batched_backward(model, teacher, items, spec, size=size, pad_id=tok.pad_token_id)
    micro_grads = [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]
    for a, b in zip(micro_grads, whole_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    assert any(g.abs().sum() > 0 for g in whole_grads)
    assert (stats.tokens, stats.rollouts) == (whole_stats.tokens, whole_stats.rollouts) == (
        sum(len(it.completion_ids) for it in items if it.plan.active), 6)
    for got, want in ((stats.loss, whole_stats.loss), (stats.divergence, whole_stats.divergence),
                      (stats.entropy, whole_stats.entropy)):
        assert (got is None) == (want is None) and (got is None or abs(got - want) < 1e-9), (got, want)
