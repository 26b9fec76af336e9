"""The objective's sampled-token terms on the toy model against hand-computed losses: GRPO's k3 KL to the
base weights (kl_coef), the cross-entropy on the own sample (sft_weight, SSD), RLCSD's hint contrast,
and the per-token divergence clip (OPSD) — on the materialized and the fused route.

    pytest tests/test_objective_terms.py
"""

from __future__ import annotations

import copy

import pytest
import torch
from helpers import smoke_training

from sdbench.core.divergence import token_divergence
from sdbench.core.model import encode_prompt, load_model
from sdbench.core.objective import LossItem, LossSpec, self_distillation_loss
from sdbench.strategy import HintContrast, RolloutPlan, TeacherContext

pytestmark = pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad=True to a scalar")

PROMPT, DEMO = "pick a c e :", "demo c ; pick a c e :"
IMPLS = ["materialized", "fused"]


@pytest.fixture(scope="module")
def model_tok(toy_model_dir: str):
    return load_model(toy_model_dir)


@pytest.fixture(scope="module")
def reference(model_tok):
    """The 'base' weights: the toy model, perturbed by fixed noise so the KL to it is not 0."""
    ref = copy.deepcopy(model_tok[0])
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    ref.requires_grad_(False)
    return ref


def item(tok, plan: RolloutPlan, teachers=(), contrast=()) -> LossItem:
    completion = [tok.convert_tokens_to_ids("c"), tok.convert_tokens_to_ids("e"), tok.eos_token_id]
    return LossItem(encode_prompt(tok, PROMPT), completion, plan, tuple(encode_prompt(tok, t) for t in teachers),
                    tuple(encode_prompt(tok, t) for t in contrast))


def logp_at(model, tok, context: str, it: LossItem, temperature: float = 1.0) -> torch.Tensor:
    """Hand route: log p(y_t | context, y_<t) [T] from one plain forward."""
    ids = torch.tensor([[*encode_prompt(tok, context), *it.completion_ids]])
    p = ids.shape[1] - len(it.completion_ids)
    with torch.no_grad():
        logp = (model(input_ids=ids).logits[0].double() / temperature).log_softmax(-1)
    return logp[p - 1:-1].gather(-1, ids[0, p:, None]).squeeze(-1)


def loss(model, tok, items, impl, reference=None, temperature=1.0, divergence="reverse_kl"):
    spec = LossSpec(divergence=divergence, temperature=temperature, loss_impl=impl)
    return self_distillation_loss(model, model, items, spec, pad_id=tok.pad_token_id, reference=reference)


@pytest.mark.parametrize("impl", IMPLS)
def test_grpo_kl_term_is_beta_k3_to_the_base_weights(model_tok, reference, impl: str) -> None:
    model, tok = model_tok
    a, beta = 0.7, 0.04
    it = item(tok, RolloutPlan(advantage=a, kl_coef=beta))
    got, _ = loss(model, tok, [it], impl, reference)
    lp, ref = logp_at(model, tok, PROMPT, it), logp_at(reference, tok, PROMPT, it)
    d = ref - lp
    k3 = torch.exp(d) - d - 1.0                      # arXiv 2402.03300 eq. 4, per token
    assert float(k3.min()) > 0                       # the perturbed base differs on every token
    want = (-a * lp + beta * k3).mean()
    assert float(got) == pytest.approx(float(want), rel=1e-5)
    # kl_coef 0: the loss of today's plan, bit for bit (the KL branch is skipped, not multiplied by 0)
    zero, _ = loss(model, tok, [item(tok, RolloutPlan(advantage=a, kl_coef=0.0))], impl, reference)
    today, _ = loss(model, tok, [item(tok, RolloutPlan(advantage=a))], impl)
    assert float(zero) == float(today)


def test_kl_without_a_reference_model_says_how_to_get_one(model_tok) -> None:
    model, tok = model_tok
    with pytest.raises(ValueError, match="needs_reference"):
        loss(model, tok, [item(tok, RolloutPlan(kl_coef=0.1))], "materialized")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_sft_term_is_cross_entropy_on_the_sampled_tokens_untempered(model_tok, impl: str, temperature) -> None:
    model, tok = model_tok
    it = item(tok, RolloutPlan(sft_weight=1.0))
    got, stats = loss(model, tok, [it], impl, temperature=temperature)
    want = -logp_at(model, tok, PROMPT, it, temperature=1.0).mean()     # SFT reads the logits at T = 1
    assert float(got) == pytest.approx(float(want), rel=1e-5) and stats.tokens == 3
    got.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    model.zero_grad()


@pytest.mark.parametrize("impl", IMPLS)
def test_hint_contrast_modulates_the_advantage_per_token(model_tok, impl: str) -> None:
    model, tok = model_tok
    wrong = ["demo a ; pick a c e :", "demo e ; pick a c e :"]
    c = HintContrast(positive=TeacherContext(("c",)), negatives=(TeacherContext(("a",)), TeacherContext(("e",))),
                     scale=0.5, tau=0.5, clip=(-2.0, 2.0), threshold=0.0)
    for a in (0.3, -0.3):
        it = item(tok, RolloutPlan(advantage=a, contrast=c), contrast=[DEMO, *wrong])
        got, _ = loss(model, tok, [it], impl)
        pos = logp_at(model, tok, DEMO, it)
        neg = torch.stack([logp_at(model, tok, w, it) for w in wrong])
        e = pos - (torch.logsumexp(neg, 0) - torch.log(torch.tensor(2.0, dtype=torch.float64)))
        r = (0.5 * torch.tanh(e / 0.5)).clamp(-2.0, 2.0)
        a_t = (a + r).clamp(min=0.0) if a > 0 else (a + r).clamp(max=0.0)
        want = (-a_t * logp_at(model, tok, PROMPT, it)).mean()
        assert float(got) == pytest.approx(float(want), rel=1e-5)
        plain, _ = loss(model, tok, [item(tok, RolloutPlan(advantage=a))], impl)
        assert float(got) != pytest.approx(float(plain), rel=1e-3), "the hints change the loss"


@pytest.mark.parametrize("impl", IMPLS)
def test_divergence_clip_caps_each_tokens_divergence(model_tok, impl: str) -> None:
    model, tok = model_tok
    ctx = (TeacherContext(demos=("c",)),)
    it = item(tok, RolloutPlan(teachers=ctx), teachers=[DEMO])
    ids = torch.tensor([[*it.prompt_ids, *it.completion_ids]])
    tids = torch.tensor([[*it.teacher_prompt_ids[0], *it.completion_ids]])
    n = len(it.completion_ids)
    with torch.no_grad():
        s = model(input_ids=ids).logits[0, -n - 1:-1].double().log_softmax(-1)
        t = model(input_ids=tids).logits[0, -n - 1:-1].double().log_softmax(-1)
    div = token_divergence(s, t, "reverse_kl", 0.5)
    clip = float(div.sort().values[1])              # the middle token's divergence: one token is clipped
    assert float(div.max()) > clip > float(div.min())
    full, _ = loss(model, tok, [it], impl)
    assert float(full) == pytest.approx(float(div.mean()), rel=1e-5)
    clipped, _ = loss(model, tok, [item(tok, RolloutPlan(teachers=ctx, divergence_clip=clip), teachers=[DEMO])], impl)
    assert float(clipped) == pytest.approx(float(div.clamp(max=clip).mean()), rel=1e-5)
    weighted, _ = loss(model, tok, [item(tok, RolloutPlan(teachers=ctx, divergence_clip=clip, distill_weight=0.5),
                                         teachers=[DEMO])], impl)
    assert float(weighted) == pytest.approx(0.5 * float(clipped), rel=1e-5)
    # clipped below every token: the loss is the constant clip and gives no gradient
    tiny = float(div.min()) / 2
    flat, _ = loss(model, tok, [item(tok, RolloutPlan(teachers=ctx, divergence_clip=tiny), teachers=[DEMO])], impl)
    assert float(flat) == pytest.approx(tiny, rel=1e-6)
    flat.backward()
    assert all(p.grad is None or float(p.grad.abs().max()) == 0.0 for p in model.parameters())
    model.zero_grad()


@pytest.mark.parametrize("impl", IMPLS)
def test_teacher_entropy_weight_is_exp_minus_beta_h_normalized_over_the_batch(model_tok, impl: str) -> None:
    model, tok = model_tok
    ctx = (TeacherContext(demos=("c",)),)
    texts = [DEMO, "demo e ; pick a c e :"]
    beta = 1.0
    items = [item(tok, RolloutPlan(teachers=ctx, teacher_entropy_weight=beta), teachers=[t]) for t in texts]
    got, _ = loss(model, tok, items, impl)
    divs, ents = [], []
    for it in items:
        n = len(it.completion_ids)
        ids = torch.tensor([[*it.prompt_ids, *it.completion_ids]])
        tids = torch.tensor([[*it.teacher_prompt_ids[0], *it.completion_ids]])
        with torch.no_grad():
            s = model(input_ids=ids).logits[0, -n - 1:-1].double().log_softmax(-1)
            t = model(input_ids=tids).logits[0, -n - 1:-1].double().log_softmax(-1)
        divs.append(token_divergence(s, t, "reverse_kl", 0.5))
        ents.append(-(t.exp() * t).sum(-1))
    div, ent = torch.cat(divs), torch.cat(ents)
    w = torch.exp(-beta * ent)
    w = w / w.mean()                                  # mean 1 over the weighted tokens of the batch
    assert float(w.max() / w.min()) > 1.01, "the teacher entropies differ, so the weights do"
    assert float(got) == pytest.approx(float((w * div).mean()), rel=1e-5)
    plain, _ = loss(model, tok, [item(tok, RolloutPlan(teachers=ctx), teachers=[t]) for t in texts], impl)
    assert float(plain) == pytest.approx(float(div.mean()), rel=1e-5)
    zero, _ = loss(model, tok, [item(tok, RolloutPlan(teachers=ctx, teacher_entropy_weight=0.0), teachers=[t])
                                for t in texts], impl)
    assert float(zero) == pytest.approx(float(plain), rel=1e-6)


# --- the trainer's side: base weights for kl_coef, rollout likelihoods for needs_logprob -------------

def _training(**update: object):
    return smoke_training(**{"steps": 2, "prompts_per_step": 2, "rollouts_per_prompt": 4, **update})


def test_trainer_keeps_the_base_weights_only_when_asked(toy_task) -> None:
    from sdbench.core.trainer import _reference_for
    from sdbench.testing import make_strategy

    model, _ = load_model(toy_task.base_model())
    teacher = copy.deepcopy(model)
    assert _reference_for(make_strategy("grpo"), model, teacher, _training()) is None
    kl = make_strategy("grpo", kl_coef=0.04)
    assert _reference_for(kl, model, teacher, _training(teacher="frozen")) is teacher   # the frozen teacher is it
    ref = _reference_for(kl, model, teacher, _training(teacher="ema"))
    assert ref is not model and ref is not teacher and not any(p.requires_grad for p in ref.parameters())
    assert all(torch.equal(a, b) for a, b in zip(ref.parameters(), model.parameters(), strict=True))


def test_trainer_fills_rollout_logprobs_with_the_policys_likelihood(toy_task) -> None:
    from sdbench.core.trainer import train
    from sdbench.strategy import StrategyBase

    seen = []

    class Spy(StrategyBase):
        needs_logprob = True

        def plan(self, group):
            seen.extend((group.problem.prompt, r) for r in group.rollouts)
            return [RolloutPlan() for _ in group.rollouts]

    model, tok = load_model(toy_task.base_model())
    train(model, tok, toy_task, Spy(Spy.Params()), _training(steps=1), seed=0)   # nothing trains: the base model
    assert len(seen) == 8
    checked = 0
    for prompt, r in seen:
        assert r.logprob is not None and r.logprob < 0 and r.length >= 1
        ids = [*tok(r.completion, add_special_tokens=False)["input_ids"], tok.eos_token_id]
        if len(ids) == r.length:   # the rollout ended and its text re-encodes to its tokens
            want = logp_at(model, tok, prompt, LossItem([], ids, RolloutPlan())).sum()
            assert r.logprob == pytest.approx(float(want), rel=1e-4, abs=1e-5)
            checked += 1
    assert checked > 0
