"""The shared SD objective on hand-built rollouts: zero when teacher == student context, the GRPO
term's gradient, teacher combinations, and that only active rollouts count."""

from __future__ import annotations

import pytest
import torch

from sdbench.core.model import encode_prompt, load_model
from sdbench.core.objective import LossItem, LossSpec, self_distillation_loss
from sdbench.strategy import RolloutPlan, TeacherContext

# The asserts read the values of differentiable losses (one test backpropagates through one): torch's
# float-of-a-grad-tensor advisory says nothing about their behaviour.
pytestmark = pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad=True to a scalar")


@pytest.fixture(scope="module")
def model_tok(toy_model_dir: str):
    return load_model(toy_model_dir)


def items_for(tok, plan: RolloutPlan, teacher_texts: list[str]) -> list[LossItem]:
    prompt = encode_prompt(tok, "pick a c e :")
    completion = [tok.convert_tokens_to_ids("c"), tok.eos_token_id]
    return [LossItem(prompt, completion, plan, tuple(encode_prompt(tok, t) for t in teacher_texts))]


def loss_of(model, tok, items, divergence="reverse_kl"):
    return self_distillation_loss(model, model, items, LossSpec(divergence=divergence, loss_impl="materialized"),
                                  pad_id=tok.pad_token_id)


def test_teacher_with_the_student_context_gives_zero_divergence(model_tok) -> None:
    model, tok = model_tok
    plan = RolloutPlan(teachers=(TeacherContext(demos=("c",)),))
    for divergence in ("reverse_kl", "forward_kl", "jsd"):
        loss, stats = loss_of(model, tok, items_for(tok, plan, ["pick a c e :"]), divergence)
        assert abs(float(loss.detach())) < 1e-6 and stats.tokens == 2
        loss, _ = loss_of(model, tok, items_for(tok, plan, ["demo c ; pick a c e :"]), divergence)
        assert float(loss) > 1e-4


def test_mixture_and_logmean_agree_for_identical_contexts(model_tok) -> None:
    model, tok = model_tok
    ctx = TeacherContext(demos=("c",))
    texts = ["demo c ; pick a c e :"] * 3
    mix, _ = loss_of(model, tok, items_for(tok, RolloutPlan(teachers=(ctx,) * 3, combine="mixture"), texts))
    geo, _ = loss_of(model, tok, items_for(tok, RolloutPlan(teachers=(ctx,) * 3, combine="logmean"), texts))
    one, _ = loss_of(model, tok, items_for(tok, RolloutPlan(teachers=(ctx,)), texts[:1]))
    assert float(mix) == pytest.approx(float(one), rel=1e-5)
    assert float(geo) == pytest.approx(float(one), rel=1e-5)


def test_policy_gradient_term_is_minus_advantage_times_logprob(model_tok) -> None:
    model, tok = model_tok
    items = items_for(tok, RolloutPlan(advantage=0.7), [])
    loss, stats = loss_of(model, tok, items)
    ids = torch.tensor([[*items[0].prompt_ids, *items[0].completion_ids]])
    logp = model(input_ids=ids).logits.log_softmax(-1)[0]
    p = len(items[0].prompt_ids)
    token_logp = logp[p - 1:p + 1].gather(-1, ids[0, p:p + 2, None]).squeeze(-1)
    assert float(loss) == pytest.approx(float(-0.7 * token_logp.mean()), rel=1e-5)
    assert stats.divergence == 0.0


def test_distill_weight_scales_and_flips_the_loss(model_tok) -> None:
    model, tok = model_tok
    ctx = (TeacherContext(demos=("c",)),)
    texts = ["demo c ; pick a c e :"]
    base, _ = loss_of(model, tok, items_for(tok, RolloutPlan(teachers=ctx), texts))
    neg, _ = loss_of(model, tok, items_for(tok, RolloutPlan(teachers=ctx, distill_weight=-0.5), texts))
    assert float(neg) == pytest.approx(-0.5 * float(base), rel=1e-5)


def test_inactive_rollouts_are_ignored_and_empty_batches_give_zero_with_a_graph(model_tok) -> None:
    model, tok = model_tok
    loss, stats = loss_of(model, tok, items_for(tok, RolloutPlan(), []))
    assert float(loss) == 0.0 and stats.rollouts == 0
    loss.backward()   # differentiable, so the trainer's step stays uniform
    model.zero_grad()


def test_teacher_entropy_gate_keeps_only_tokens_in_range(model_tok) -> None:
    model, tok = model_tok
    ctx = (TeacherContext(demos=("c",)),)
    texts = ["demo c ; pick a c e :"]
    full, _ = loss_of(model, tok, items_for(tok, RolloutPlan(teachers=ctx), texts))
    none, _ = loss_of(model, tok, items_for(tok, RolloutPlan(teachers=ctx, teacher_entropy_gate=(-1.0, -0.5)), texts))
    wide, _ = loss_of(model, tok, items_for(tok, RolloutPlan(teachers=ctx, teacher_entropy_gate=(0.0, 1e9)), texts))
    assert float(none) == 0.0 and float(wide) == pytest.approx(float(full), rel=1e-6) and float(full) > 0


def test_signed_logmean_weights_subtract_a_context(model_tok) -> None:
    model, tok = model_tok
    demo, demo_only, question = (TeacherContext(demos=("c",)), TeacherContext(demos=("c",), with_question=False),
                                 TeacherContext(demos=()))
    texts = ["demo c ; pick a c e :", "demo c ; :", "pick a c e :"]
    # alpha = 0: the purified teacher is the plain demo teacher
    plain, _ = loss_of(model, tok, items_for(tok, RolloutPlan(teachers=(demo,)), texts[:1]))
    zero = RolloutPlan(teachers=(demo, TeacherContext(("c",), weight=0.0, with_question=False),
                                 TeacherContext((), weight=0.0)), combine="logmean")
    assert float(loss_of(model, tok, items_for(tok, zero, texts))[0]) == pytest.approx(float(plain), rel=1e-5)
    purified = RolloutPlan(teachers=(demo, TeacherContext(("c",), -0.5, False), TeacherContext((), 0.5)),
                           combine="logmean")
    assert float(loss_of(model, tok, items_for(tok, purified, texts))[0]) != pytest.approx(float(plain), rel=1e-3)
    with pytest.raises(ValueError):
        RolloutPlan(teachers=(demo, TeacherContext(("c",), -0.5, False)), combine="mixture")
    assert demo_only.with_question is False and question.demos == ()
