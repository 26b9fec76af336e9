"""The trainer: rollouts -> verdicts -> the strategy's plan -> teacher scoring -> loss -> AdamW step.

    result = train(model, tokenizer, task, strategy, config.training_for(spec), seed=0, hook=evaluator)

The trainer owns the model, the optimizer, tokenization and generation; the strategy sees only a
`Group` and returns a plan. Every random choice derives from (seed, step), so a run is
deterministic on CPU and a resumed run replays the same steps. The teacher's weights follow
`cfg.teacher` (EMA of the student from the base weights by default, as TRL's and the official SDPO;
frozen base; or the live student); the learning rate warms up linearly over `cfg.warmup_steps`.
An `EvalHook` is called at step 0 and every `hook.every` optimizer steps and after the last one
(evaluation along training); its state travels in the training checkpoint, which is written at
every evaluation point, so a killed cell resumes with the same trajectory.

The mechanism (issue 29): each step's log keeps, per problem, the classes of the demos drawn and of the
rollouts they condition (counts only, `demo_log`); a strategy with `demo_source: base_pool` gets a fixed
pool of the base model's samples per problem (`BasePool`), drawn from the base weights the first time the
problem comes up (the same samples as drawing them all at step 0, at the cost of the problems used only).
"""

from __future__ import annotations

import copy
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from sdbench.core.checkpoint import load_checkpoint, save_checkpoint
from sdbench.core.loss_items import LossItem, LossStats
from sdbench.core.model import PromptFormat, encode_prompt, prompt_format, tokenizer_info
from sdbench.core.objective import micro_batched_backward, self_distillation_loss
from sdbench.core.rollouts import graded_rollouts
from sdbench.core.settings import TrainingConfig
from sdbench.core.timing import NO_TIMER, StageTimer
from sdbench.seeding import stable_rng
from sdbench.strategy import Group, Rollout, RolloutPlan, Strategy, TeacherContext, class_id, class_of
from sdbench.task import Task, problem_set


@dataclass
class StepLog:
    step: int
    loss: float
    divergence: float
    entropy: float | None
    reward: float              # mean reward of the step's rollouts
    trained_rollouts: int      # rollouts with a training signal
    # problem id -> {"demos", "conditioned", "correct": class id -> count, "same": int} (`demo_log`)
    demos: dict[str, dict] | None = None

    def to_json(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@dataclass
class TrainResult:
    steps: int
    wall_s: float
    log: list[StepLog] = field(default_factory=list)


class TrainingDiverged(RuntimeError):
    """The loss, a gradient or a weight became NaN/Inf."""

    def __init__(self, step: int, what: str) -> None:
        super().__init__(f"{what} is not finite at step {step}")
        self.step = step


class EvalHook(Protocol):
    """Evaluation along training: called with the number of optimizer steps taken so far."""

    every: int

    def __call__(self, step: int, model: Any) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def _teacher_for(model, weights: str):
    if weights == "live":
        return model
    frozen = copy.deepcopy(model)
    frozen.requires_grad_(False)
    return frozen


@torch.no_grad()
def _ema_update(teacher, student, tau: float) -> None:
    for t, s in zip(teacher.parameters(), student.parameters(), strict=True):
        t.lerp_(s, tau)


def _reference_for(strategy: Strategy, model, teacher, cfg: TrainingConfig):
    """The frozen base weights for plans with `kl_coef` (None unless the strategy `needs_reference`);
    the frozen teacher is that already."""
    if not getattr(strategy, "needs_reference", False):
        return None
    return teacher if cfg.teacher == "frozen" else _teacher_for(model, "frozen")


def plan_group(strategy: Strategy, group: Group) -> list[RolloutPlan]:
    plans = list(strategy.plan(group))
    if len(plans) != len(group.rollouts):
        raise ValueError(f"{type(strategy).__name__}.plan returned {len(plans)} plans for "
                         f"{len(group.rollouts)} rollouts")
    return plans


def demo_log(group: Group, plans: list[RolloutPlan]) -> dict | None:
    """One group's demo log (counts only): the class of every demo drawn (`demos`), of every rollout a demo
    conditions (`conditioned`, once per rollout), of the group's correct rollouts (`correct`), and how many
    conditioned rollouts share a class with one of their demos (`same`). Demos are found by text among the
    group's rollouts and its base pool; the reference (or any other text) is its own class. None: no demo."""
    known = {r.completion: class_id(class_of(r)) for r in (*group.rollouts, *(group.pool or ()))}
    demos: Counter[str] = Counter()
    conditioned: Counter[str] = Counter()
    same = 0
    for rollout, plan in zip(group.rollouts, plans, strict=True):
        drawn = [known.get(d, class_id(d)) for t in plan.teachers for d in t.demos]
        if drawn:
            demos.update(drawn)
            mine = class_id(class_of(rollout))
            conditioned[mine] += 1
            same += mine in drawn
    if not demos:
        return None
    correct = Counter(class_id(class_of(r)) for r in group.correct)
    return {"demos": dict(sorted(demos.items())), "conditioned": dict(sorted(conditioned.items())),
            "correct": dict(sorted(correct.items())), "same": same}


class BasePool:
    """The base model's graded samples per problem, for `demo_source: base_pool`: drawn from a frozen copy
    of the base weights the first time a problem comes up, seeded by (seed, problem id), so a resumed run
    draws the same pool; `size` samples (the group size), never the student's current rollouts."""

    def __init__(self, model, tokenizer, task: Task, *, size: int, seed: int, temperature: float, backend: str,
                 ) -> None:
        self.base = copy.deepcopy(model).requires_grad_(False)
        self.tokenizer, self.task, self.size, self.seed = tokenizer, task, size, seed
        self.temperature, self.backend = temperature, backend
        self.pools: dict[str, tuple[Rollout, ...]] = {}

    def __call__(self, problem, encode: Callable[[str], list[int]]) -> tuple[Rollout, ...]:
        if problem.id not in self.pools:
            generator = torch.Generator().manual_seed(stable_rng("base-pool", self.seed, problem.id).getrandbits(63))
            graded = graded_rollouts(self.base, self.tokenizer, self.task, [problem], [encode(problem.prompt)],
                                     n=self.size, generator=generator, temperature=self.temperature,
                                     backend=self.backend)[0]
            self.pools[problem.id] = tuple(
                Rollout(index=j, completion=t, correct=v.correct, reward=v.reward, functional_class=v.functional_class,
                        semantic_class=v.semantic_class)
                for j, (t, v) in enumerate(zip(graded.texts, graded.verdicts, strict=True)))
        return self.pools[problem.id]


def warmup_lr(cfg: TrainingConfig, step: int) -> float:
    """Learning rate of optimizer step `step` (0-based): linear warmup over cfg.warmup_steps, then cfg.lr.
    A function of the step alone, so a resumed run needs no scheduler state."""
    if cfg.warmup_steps <= 0:
        return cfg.lr
    return cfg.lr * min(1.0, (step + 1) / cfg.warmup_steps)


def train(model, tokenizer, task: Task, strategy: Strategy, cfg: TrainingConfig, *, seed: int,
          hook: EvalHook | None = None, on_step: Callable[[StepLog], None] | None = None,
          checkpoint: Path | None = None, timer: StageTimer = NO_TIMER, overlap: bool = False) -> TrainResult:
    """Train `model` in place for cfg.steps steps of `strategy`.

    `cfg` is the cell's settings (`TrainingConfig.for_cell`: a strategy's fixed divergence is already in
    them); the loss is `cfg.loss_spec`, built once here and passed unchanged to the objective.

    With `checkpoint`, state is saved at every evaluation point of `hook` (and every
    cfg.checkpoint_every steps when set) and a checkpoint found at start is resumed from.
    `overlap`: the teacher's forward beside the student's on a second thread (a cell with an idle core).
    """
    fixed = getattr(strategy, "divergence", None)
    if fixed and fixed != cfg.divergence:   # one home for the divergence: the cell's settings
        raise ValueError(f"{type(strategy).__name__} fixes divergence {fixed!r} but the settings say "
                         f"{cfg.divergence!r}: pass cfg.for_cell(divergence=strategy.divergence)")
    loss_spec = cfg.loss_spec   # built once, validated; passed unchanged to the objective and the kernels
    info = tokenizer_info(tokenizer)
    with timer("setup"):
        pool = problem_set(task, "train", cfg.train_problems, seed=0)
    teacher = _teacher_for(model, cfg.teacher)
    reference = _reference_for(strategy, model, teacher, cfg)   # before a resume loads weights: the base's
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    encode = _PromptEncoder(tokenizer, prompt_format(task))
    base_pool = (BasePool(model, tokenizer, task, size=cfg.rollouts_per_prompt, seed=seed, temperature=cfg.temperature,
                     backend=cfg.backend)
            if getattr(getattr(strategy, "params", None), "demo_source", None) == "base_pool" else None)

    result = TrainResult(steps=0, wall_s=0.0)
    first = 0
    if checkpoint is not None and checkpoint.is_file():
        last, log, extra = load_checkpoint(checkpoint, model=model, optimizer=optimizer, teacher=teacher)
        result.log = [StepLog(**entry) for entry in log]
        first = result.steps = last + 1
        if hook is not None and extra is not None:
            hook.load_state_dict(extra)
    elif hook is not None:
        hook(0, model)

    def save(step: int) -> None:
        if checkpoint is not None:
            save_checkpoint(checkpoint, step=step, model=model, optimizer=optimizer, teacher=teacher,
                            log=[entry.__dict__ for entry in result.log],
                            extra=None if hook is None else hook.state_dict())

    start = time.perf_counter()
    for step in range(first, cfg.steps):
        rng = stable_rng("train-step", seed, step)
        problems = rng.sample(pool, min(cfg.prompts_per_step, len(pool)))
        model.eval()
        items, rewards, demos = _rollouts_and_plans(model, tokenizer, task, strategy, cfg, problems, rng, encode,
                                                    info, timer, base_pool)
        model.train()
        optimizer.zero_grad(set_to_none=True)
        if cfg.micro_batch is not None:     # backward inside, one micro-batch's activations at a time
            stats = micro_batched_backward(model, teacher, items, loss_spec, size=cfg.micro_batch,
                                           pad_id=info.pad_id, timer=timer, overlap=overlap, reference=reference,
                                           check=lambda loss, step=step: _check_finite(loss, step, "loss"))
        else:
            loss, stats = self_distillation_loss(   # times its "teacher" and "student" parts itself
                model, teacher, items, loss_spec, pad_id=info.pad_id, timer=timer, overlap=overlap,
                reference=reference)
            _check_finite(loss, step, "loss")
            if stats.rollouts:
                with timer("backward"):
                    loss.backward()
        if stats.rollouts:
            with timer("optimizer"):
                norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                _check_finite(norm, step, "gradient norm")
                for group in optimizer.param_groups:
                    group["lr"] = warmup_lr(cfg, step)
                optimizer.step()
                if not all(torch.isfinite(p).all() for p in model.parameters()):
                    raise TrainingDiverged(step, "a weight")
                if cfg.teacher == "ema":   # once per optimizer step, as TRL's SDPO (ema_update_rate)
                    _ema_update(teacher, model, cfg.ema_tau)
        log = _log(step, stats, rewards)
        log.demos = demos
        result.log.append(log)
        result.steps = step + 1
        evaluated = hook is not None and (result.steps % hook.every == 0 or result.steps == cfg.steps)
        if evaluated:
            model.eval()
            hook(result.steps, model)
        if evaluated or (cfg.checkpoint_every and result.steps % cfg.checkpoint_every == 0):
            save(step)
        if on_step is not None:
            on_step(log)
    model.eval()
    result.wall_s = time.perf_counter() - start
    return result


class _PromptEncoder:
    """Token ids of prompt texts, cached: the same prompts and demos recur across steps."""

    def __init__(self, tokenizer, fmt: PromptFormat | None = None) -> None:
        self.tokenizer, self.fmt = tokenizer, fmt     # fmt: the task's prompt format (chat or plain, system turn)
        self.cache: dict[str, list[int]] = {}

    def __call__(self, text: str) -> list[int]:
        if text not in self.cache:
            self.cache[text] = encode_prompt(self.tokenizer, text, self.fmt)
        return self.cache[text]


def _rollouts_and_plans(model, tokenizer, task: Task, strategy: Strategy, cfg: TrainingConfig, problems: list,
                        rng: random.Random, encode: _PromptEncoder, info, timer: StageTimer = NO_TIMER,
                        base_pool: BasePool | None = None) -> tuple[list[LossItem], list[float], dict | None]:
    """Sample G rollouts per problem, grade them, and turn the strategy's plans into loss items (and the
    step's demo log: problem id -> `demo_log`, None when no plan drew a demo)."""
    generator = torch.Generator().manual_seed(rng.getrandbits(63))
    groups = graded_rollouts(model, tokenizer, task, problems, [encode(p.prompt) for p in problems],
                             n=cfg.rollouts_per_prompt, generator=generator, temperature=cfg.temperature,
                             backend=cfg.backend, timer=timer)
    items: list[LossItem] = []
    rewards: list[float] = []
    likelihoods = _likelihoods(model, groups, encode, info, cfg) if getattr(strategy, "needs_logprob", False) \
        else None
    demos: dict[str, dict] = {}
    for g, graded in enumerate(groups):
        problem = graded.problem
        rollouts = tuple(Rollout(index=j, completion=t, correct=v.correct, reward=v.reward,
                                 functional_class=v.functional_class, semantic_class=v.semantic_class,
                                 **({} if likelihoods is None else likelihoods[g][j]))
                         for j, (t, v) in enumerate(zip(graded.texts, graded.verdicts, strict=True)))
        rewards.extend(r.reward for r in rollouts)
        group = Group(problem=problem, rollouts=rollouts, rng=random.Random(rng.getrandbits(63)),
                      pool=None if base_pool is None else base_pool(problem, encode))
        plans = plan_group(strategy, group)
        entry = demo_log(group, plans)
        if entry is not None:
            demos[problem.id] = entry
        for s, plan in zip(graded.samples, plans, strict=True):
            completion = [*s.token_ids, info.eos_id] if s.finished else list(s.token_ids)
            contexts = tuple(_context_ids(task, problem, c, encode) for c in plan.teachers)
            contrast = () if plan.contrast is None else tuple(_context_ids(task, problem, c, encode)
                                                                for c in plan.contrast.contexts)
            items.append(LossItem(encode(problem.prompt), completion, plan, contexts, contrast))
    return items, rewards, demos or None


def _context_ids(task: Task, problem, context: TeacherContext, encode: _PromptEncoder) -> list[int]:
    return encode(task.teacher_prompt(problem, context.demos) if context.with_question
                  else task.demo_only_prompt(problem, context.demos))


def _likelihoods(model, groups, encode: _PromptEncoder, info, cfg: TrainingConfig) -> list[list[dict]]:
    """Per group and rollout: `logprob` (sum of log pi(y_t | x, y_<t) under the current weights at the sampling
    temperature, EOS included when the rollout ended) and `length` (its token count), for `needs_logprob`."""
    from sdbench.core.policy_terms import score_sampled

    prefixes, completions = [], []
    for graded in groups:
        for s in graded.samples:
            prefixes.append(encode(graded.problem.prompt))
            completions.append([*s.token_ids, info.eos_id] if s.finished else list(s.token_ids))
    kept = [i for i, c in enumerate(completions) if c]   # an empty rollout scores 0 and takes no forward
    scored = score_sampled(model, [prefixes[i] for i in kept], [completions[i] for i in kept], info.pad_id,
                           cfg.temperature, cfg.loss_impl).tolist() if kept else []
    out, pos = [], 0
    for graded in groups:
        mine = []
        for s in graded.samples:
            n = len(s.token_ids) + int(s.finished)
            mine.append({"logprob": float(sum(scored[pos:pos + n])), "length": n})
            pos += n
        out.append(mine)
    return out


def _check_finite(value: torch.Tensor, step: int, what: str) -> None:
    if not torch.isfinite(value).all():
        raise TrainingDiverged(step, what)


def _log(step: int, stats: LossStats, rewards: list[float]) -> StepLog:
    return StepLog(step=step, loss=stats.loss, divergence=stats.divergence, entropy=stats.entropy,
                   reward=sum(rewards) / max(len(rewards), 1), trained_rollouts=stats.rollouts)
