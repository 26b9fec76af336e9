"""The fast training-step scoring (sdbench.core._forward, used by impl="fused") equals the previous route.

Run: pytest tests/test_forward.py   (~1-2 min on one CPU thread)

impl="fused" scores the student and the teacher with each distinct prompt / teacher context computed
once and its keys/values shared by its rows (sdbench.core._forward.PrefixScorer); impl="fused_padded"
is the previous fused route (right-padded transformers calls, every prompt recomputed per rollout) and
impl="materialized" the logits route. The loss and every parameter gradient must agree, in fp32, to
rtol 1e-5 (loss) and atol 1e-6 (gradients), on real training batches of the three embedded tasks
(their shipped models, quick-profile 16 x 8 rollouts sampled by the trainer's own code) under every
kind of plan the built-in strategies make, and on random-init llama (GQA) and qwen2 (q/k/v biases)
models with hand-built batches (ragged prompts, length-1 completions, several / demo-only / negatively
weighted contexts, gates, entropy bonus, advantages, the materialized fallback).
"""

from __future__ import annotations

import copy

import pytest
import torch

from sdbench.core import _forward
from sdbench.core._forward import PrefixScorer, length_buckets, score_hidden
from sdbench.core.objective import LossItem, LossSpec, self_distillation_loss
from sdbench.core.scoring import gather_at, hidden_fn
from sdbench.core.timing import NO_TIMER, StageTimer
from sdbench.strategy import RolloutPlan, TeacherContext

LOSS_RTOL, GRAD_ATOL = 1e-5, 1e-6
TASKS = ("graph_paths", "arith_target", "code_synth")
STRATEGIES = ("single_sampled_demo", "multi_demo", "grpo", "entropy_regularized", "pmi_purified", "antisd")


pytestmark = pytest.mark.usefixtures("one_torch_thread")   # timed and compared on one thread (conftest)


def _perturbed(model, scale: float = 0.02):
    """A separate teacher (as the EMA one is): the student's weights plus fixed noise."""
    teacher = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in teacher.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    teacher.requires_grad_(False)
    return teacher


_BATCHES: dict[tuple[str, str], tuple] = {}


def real_batch(task_name: str, strategy_name: str, prompts: int = 8):
    """A quick-profile training step's loss items (`prompts` x 8 rollouts; the quick profile has 16
    prompts, 8 keeps the matrix of cases fast), built by the trainer's own code."""
    from sdbench.config import resolve_config
    from sdbench.core import trainer
    from sdbench.core.model import load_model, tokenizer_info
    from sdbench.seeding import stable_rng
    from sdbench.strategy import STRATEGIES as REGISTRY
    from sdbench.task import load_task

    key = (task_name, strategy_name, prompts)
    if key not in _BATCHES:
        cfg = resolve_config(overrides={"profile": "quick"}).training
        task = load_task(task_name)
        model, tok = load_model(task.base_model())
        info = tokenizer_info(tok)
        rng = stable_rng("train-step", 0, 3)
        pool = task.problems("train", cfg.train_problems, seed=0)
        problems = rng.sample(pool, prompts)
        model.eval()
        items, _, _ = trainer._rollouts_and_plans(model, tok, task, REGISTRY.get(strategy_name)(), cfg, problems, rng,
                                               trainer._PromptEncoder(tok), info)
        model.train()
        _BATCHES[key] = (model, _perturbed(model), items, info.pad_id, cfg)
    return _BATCHES[key]


def loss_and_grads(model, teacher, items, impl: str, *, pad_id: int, beta: float = 0.5, timer: StageTimer = NO_TIMER,
                   overlap: bool = False, **kw) -> tuple[torch.Tensor, object, list[torch.Tensor]]:
    """Loss and gradients under `LossSpec(loss_impl=impl, jsd_beta=beta, **kw)`."""
    model.zero_grad(set_to_none=True)
    spec = LossSpec(loss_impl=impl, jsd_beta=beta, **kw)
    loss, stats = self_distillation_loss(model, teacher, items, spec, pad_id=pad_id, timer=timer, overlap=overlap)
    loss.backward()
    grads = [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    return loss.detach(), stats, grads


def assert_same(new, old, what: str, same_stats: bool = True) -> tuple[float, float]:
    """Loss to rtol 1e-5, every gradient to atol 1e-6; returns (relative loss difference, max grad difference).
    same_stats: the divergence statistic too (the fused and materialized routes define it differently)."""
    (loss_n, stats_n, grads_n), (loss_o, stats_o, grads_o) = new, old
    torch.testing.assert_close(loss_n, loss_o, rtol=LOSS_RTOL, atol=0.0, msg=lambda m: f"{what} loss: {m}")
    assert stats_n.tokens == stats_o.tokens and stats_n.rollouts == stats_o.rollouts
    if same_stats:
        assert stats_n.divergence == pytest.approx(stats_o.divergence, rel=1e-4, abs=1e-6)
    for i, (a, b) in enumerate(zip(grads_n, grads_o, strict=True)):
        torch.testing.assert_close(a, b, rtol=0.0, atol=GRAD_ATOL, msg=lambda m, i=i: f"{what} grad {i}: {m}")
    assert any(g.abs().sum() > 0 for g in grads_o)
    return (float((loss_n - loss_o).abs() / loss_o.abs().clamp(min=1e-30)),
            max(float((a - b).abs().max()) for a, b in zip(grads_n, grads_o, strict=True)))


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("task", TASKS)
def test_fused_step_equals_previous_route_on_real_batches(task: str, strategy: str) -> None:
    model, teacher, items, pad_id, cfg = real_batch(task, strategy)
    assert PrefixScorer.supports(model)
    kw = dict(divergence=cfg.divergence, beta=cfg.jsd_beta, pad_id=pad_id, temperature=cfg.temperature)
    new = loss_and_grads(model, teacher, items, "fused", **kw)
    old = loss_and_grads(model, teacher, items, "fused_padded", **kw)
    assert_same(new, old, f"{task}/{strategy}")


def test_full_quick_batch_equals_previous_route() -> None:
    """The benchmark's batch: graph_paths, single_sampled_demo, the quick profile's 16 x 8."""
    model, teacher, items, pad_id, cfg = real_batch("graph_paths", "single_sampled_demo", prompts=16)
    kw = dict(divergence=cfg.divergence, beta=cfg.jsd_beta, pad_id=pad_id, temperature=cfg.temperature)
    assert_same(loss_and_grads(model, teacher, items, "fused", **kw),
                loss_and_grads(model, teacher, items, "fused_padded", **kw), "graph_paths 16x8")


@pytest.mark.parametrize(("task", "divergence", "estimator"), [("graph_paths", "jsd", "full"),
                                                               ("arith_target", "forward_kl", "full"),
                                                               ("arith_target", "reverse_kl", "topk"),
                                                               ("code_synth", "reverse_kl", "sampled_token")])
def test_live_teacher_and_other_divergences_on_real_batches(task: str, divergence: str, estimator: str) -> None:
    """The live teacher (teacher is the student) and the JSD / forward-KL / top-k / sampled-token routes."""
    model, _, items, pad_id, cfg = real_batch(task, "multi_demo")
    kw = dict(divergence=divergence, beta=0.3, pad_id=pad_id, temperature=1.2, estimator=estimator,
              topk=4 if estimator == "topk" else None)
    assert_same(loss_and_grads(model, model, items, "fused", **kw),
                loss_and_grads(model, model, items, "fused_padded", **kw), f"{task}/{divergence}/{estimator}")


def test_hidden_rows_equal_transformers_on_a_real_batch(monkeypatch) -> None:
    """Rows and their gradients, with the prefix pass in one bucket and in one bucket per length."""
    model, _, items, pad_id, _ = real_batch("graph_paths", "single_sampled_demo", prompts=16)
    prefixes, completions = [it.prompt_ids for it in items], [it.completion_ids for it in items]
    old = gather_at(hidden_fn(model), [[*p, *c] for p, c in zip(prefixes, completions, strict=True)],
                    [len(p) for p in prefixes], [len(c) for c in completions], pad_id, torch.device("cpu"))
    w = torch.randn(old.shape, generator=torch.Generator().manual_seed(0)) / old.shape[0]
    want = torch.autograd.grad((old * w).sum(), list(model.parameters()))
    for call_tokens in (10**9, 0):
        monkeypatch.setattr(_forward, "BUCKET_CALL_TOKENS", call_tokens)
        new = score_hidden(model, prefixes, completions, pad_id)
        torch.testing.assert_close(new, old, rtol=1e-5, atol=1e-5)
        got = torch.autograd.grad((new * w).sum(), list(model.parameters()))
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b, rtol=0.0, atol=GRAD_ATOL)


# Random-init Llama-family models: GQA (llama) and q/k/v biases (qwen2), neither in the shipped models.

def _tiny(kind: str):
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    torch.manual_seed(0)
    common = dict(vocab_size=40, hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
                  max_position_embeddings=128, pad_token_id=0)
    cfg = (LlamaConfig(num_key_value_heads=2, **common) if kind == "llama_gqa"
           else Qwen2Config(num_key_value_heads=2, **common))
    model = AutoModelForCausalLM.from_config(cfg)
    for p in model.parameters():           # larger weights: distributions far from uniform, a sharper check
        p.data.normal_(0, 0.2)
    model.train()
    return model


D = TeacherContext


def _hand_batch() -> list[LossItem]:
    """Groups sharing prompts (ragged lengths), completions of 1..6 tokens, and every kind of plan."""
    gen = torch.Generator().manual_seed(3)

    def ids(n: int) -> list[int]:
        return torch.randint(3, 40, (n,), generator=gen).tolist()

    prompts = [ids(n) for n in (11, 4, 17, 9)]
    demos = {d: ids(n) for d, n in (("a", 5), ("b", 8), ("c", 3))}

    def ctx(prompt: list[int], c: TeacherContext) -> list[int]:
        body = [t for d in c.demos for t in demos[d]]
        return body + prompt if c.with_question else body + [1]

    plans = [RolloutPlan(teachers=(D(("a",)),)),
             RolloutPlan(teachers=(D(("b",)), D(("a",), 3.0))),
             RolloutPlan(teachers=(D(("c",)), D(("c",), -0.5, False), D((), 0.5)), combine="logmean"),
             RolloutPlan(teachers=(D(("a",)),), teacher_entropy_gate=(0.5, 3.0), advantage=0.7),
             RolloutPlan(teachers=(D(("b",)),), entropy_coef=0.2, distill_weight=0.5),
             RolloutPlan(advantage=-1.3),
             RolloutPlan()]
    items = []
    for g, prompt in enumerate(prompts):
        for r in range(5):
            plan = plans[(g * 5 + r) % len(plans)]
            completion = ids(1 + (g + 2 * r) % 6)
            items.append(LossItem(prompt, completion, plan, tuple(ctx(prompt, c) for c in plan.teachers)))
    return items


@pytest.mark.parametrize("kind", ["llama_gqa", "qwen2_bias"])
@pytest.mark.parametrize("separate_teacher", [False, True])
def test_fused_equals_previous_route_and_materialized_on_tiny_models(kind: str, separate_teacher: bool) -> None:
    model = _tiny(kind)
    assert PrefixScorer.supports(model)
    teacher = _perturbed(model, 0.05) if separate_teacher else model
    items = _hand_batch()
    kw = dict(divergence="reverse_kl", beta=0.5, pad_id=0, temperature=1.1)
    new = loss_and_grads(model, teacher, items, "fused", **kw)
    assert_same(new, loss_and_grads(model, teacher, items, "fused_padded", **kw), f"{kind} vs fused_padded")
    assert_same(new, loss_and_grads(model, teacher, items, "materialized", **kw), f"{kind} vs materialized", False)
    for divergence in ("jsd", "forward_kl"):
        kw["divergence"] = divergence
        assert_same(loss_and_grads(model, teacher, items, "fused", **kw),
                    loss_and_grads(model, teacher, items, "fused_padded", **kw), f"{kind} {divergence}")


@pytest.mark.parametrize("kind", ["llama_gqa", "qwen2_bias"])
def test_materialized_fallback_uses_the_fast_forward_and_equals_materialized(kind: str) -> None:
    """An entropy bonus without a teacher is the materialized route's; under impl="fused" its logits come
    from the fast forward."""
    model = _tiny(kind)
    items = [it for it in _hand_batch() if it.plan.teachers][:6]
    items.append(LossItem(items[0].prompt_ids, [5, 6, 7], RolloutPlan(entropy_coef=0.4)))
    kw = dict(divergence="reverse_kl", beta=0.5, pad_id=0)
    new = loss_and_grads(model, _perturbed(model), items, "fused", **kw)
    old = loss_and_grads(model, _perturbed(model), items, "materialized", **kw)
    assert new[1].entropy is not None and new[1].entropy == pytest.approx(old[1].entropy, rel=1e-5)
    assert_same(new, old, kind, False)


@pytest.fixture
def fp64_norms(monkeypatch):
    """RMSNorm in the input dtype on both routes (transformers' computes in fp32 even in fp64), and the
    shared route enabled for fp64 models: the routes then agree to fp64 rounding."""
    from transformers.models.llama.modeling_llama import LlamaRMSNorm
    from transformers.models.qwen2.modeling_qwen2 import Qwen2RMSNorm

    from sdbench.core import llama

    def norm(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon))

    def rms(self, x, weights):
        w, eps = weights
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    monkeypatch.setattr(LlamaRMSNorm, "forward", norm)
    monkeypatch.setattr(Qwen2RMSNorm, "forward", norm)
    monkeypatch.setattr(llama.RMSNorm, "forward", norm)          # the shipped models load natively
    monkeypatch.setattr(PrefixScorer, "_rms", rms)
    monkeypatch.setattr(_forward, "SHARED_FP64", True)


@pytest.mark.parametrize("kind", ["llama_gqa", "qwen2_bias", "graph_paths"])
def test_shared_route_is_exact_in_fp64(fp64_norms, kind: str) -> None:
    """In fp64 (norms in fp64 too) the shared and padded routes agree to ~1e-12: the shared route is the
    same computation, only the rounding differs."""
    if kind == "graph_paths":
        model, _, items, pad_id, _ = real_batch("graph_paths", "multi_demo")
        model = copy.deepcopy(model).double()
    else:
        model, items, pad_id = _tiny(kind).double(), _hand_batch(), 0
    teacher = _perturbed(model)
    assert PrefixScorer.supports(model)
    kw = dict(divergence="reverse_kl", beta=0.5, pad_id=pad_id, temperature=1.1)
    (loss_n, _, grads_n), (loss_o, _, grads_o) = (loss_and_grads(model, teacher, items, "fused", **kw),
                                                  loss_and_grads(model, teacher, items, "fused_padded", **kw))
    torch.testing.assert_close(loss_n, loss_o, rtol=1e-12, atol=0.0)
    for a, b in zip(grads_n, grads_o, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-13)


def test_fp64_models_take_the_padded_route() -> None:
    assert not PrefixScorer.supports(_tiny("llama_gqa").double())


def test_length_one_completions_and_empty_prefixes() -> None:
    """Only last-prefix rows (no completion pass); an empty prefix goes to the padded route."""
    model = _tiny("llama_gqa")
    prefixes = [[5, 6, 7], [5, 6, 7], [9, 10]]
    for completions in ([[3], [4], [8]], [[3], [4, 11, 12], [8]]):
        old = gather_at(hidden_fn(model), [p + c for p, c in zip(prefixes, completions, strict=True)],
                        [len(p) for p in prefixes], [len(c) for c in completions], 0, torch.device("cpu"))
        torch.testing.assert_close(PrefixScorer(model).hidden_rows(prefixes, completions, 0), old,
                                   rtol=1e-5, atol=1e-5)
    assert score_hidden(model, [[], [5]], [[3, 4], [6]], 0).shape == (3, 32)
    # An empty completion has no rows (as in gather_at), beside longer ones.
    prefixes, completions = [[5, 6], [5, 6], [7]], [[3, 4, 9], [], [8]]
    old = gather_at(hidden_fn(model), [p + c for p, c in zip(prefixes, completions, strict=True)],
                    [len(p) for p in prefixes], [len(c) for c in completions], 0, torch.device("cpu"))
    torch.testing.assert_close(score_hidden(model, prefixes, completions, 0), old, rtol=1e-5, atol=1e-5)


def test_unsupported_models_use_the_padded_route(monkeypatch) -> None:
    model = _tiny("llama_gqa")
    items = _hand_batch()
    kw = dict(divergence="reverse_kl", beta=0.5, pad_id=0)
    old = loss_and_grads(model, model, items, "fused_padded", **kw)
    monkeypatch.setattr(model.config, "model_type", "gpt2")
    assert not PrefixScorer.supports(model)
    new = loss_and_grads(model, model, items, "fused", **kw)
    torch.testing.assert_close(new[0], old[0], rtol=0, atol=0)
    monkeypatch.setattr(model.config, "model_type", "llama")
    monkeypatch.setattr(model.config, "attention_dropout", 0.1)
    assert not PrefixScorer.supports(model)      # training mode with dropout: transformers applies it
    model.eval()
    assert PrefixScorer.supports(model)


def test_timer_stages_and_unknown_impl() -> None:
    model, teacher, items, pad_id, cfg = real_batch("graph_paths", "single_sampled_demo", prompts=16)
    timer = StageTimer()
    self_distillation_loss(model, teacher, items, LossSpec(loss_impl="fused"), pad_id=pad_id, timer=timer)
    assert timer.totals["teacher_s"] > 0 and timer.totals["student_s"] > 0
    with pytest.raises(ValueError, match="impl"):
        LossSpec(loss_impl="fast")


def test_length_buckets_partition_and_are_optimal() -> None:
    import itertools

    gen = torch.Generator().manual_seed(0)
    for _ in range(30):
        lengths = torch.randint(1, 30, (int(torch.randint(1, 9, (1,), generator=gen)),), generator=gen).tolist()
        buckets = length_buckets(lengths, call_tokens=8)
        assert sorted(i for b in buckets for i in b) == list(range(len(lengths)))
        cost = sum(len(b) * max(lengths[i] for i in b) + 8 for b in buckets)
        values = sorted(set(lengths))
        best = float("inf")
        for cuts in itertools.product([False, True], repeat=len(values) - 1):   # every contiguous split
            groups, cur = [], [values[0]]
            for v, cut in zip(values[1:], cuts, strict=True):
                if cut:
                    groups.append(cur)
                    cur = []
                cur.append(v)
            groups.append(cur)
            best = min(best, sum(sum(n in g for n in lengths) * max(g) + 8 for g in groups))
        assert cost == best


@pytest.mark.parametrize("task", TASKS)
def test_teacher_beside_the_student_gives_the_same_loss_and_gradients(task: str) -> None:
    """overlap=True (a cell with an idle core): the teacher's forward on a second thread, bit for bit the
    in-line result (the same ops on the same weights, each on one thread), and its own time in "teacher"."""
    model, teacher, items, pad_id, _ = real_batch(task, "single_sampled_demo")
    kw = {"divergence": "reverse_kl", "beta": 0.5, "pad_id": pad_id}
    (loss_a, stats_a, grads_a), timer = loss_and_grads(model, teacher, items, "fused", **kw), StageTimer()
    loss_b, stats_b, grads_b = loss_and_grads(model, teacher, items, "fused", overlap=True, timer=timer, **kw)
    assert torch.equal(loss_a, loss_b) and stats_a == stats_b
    assert all(torch.equal(a, b) for a, b in zip(grads_a, grads_b, strict=True))
    assert timer.totals["teacher_s"] > 0 and timer.totals["student_s"] > 0
