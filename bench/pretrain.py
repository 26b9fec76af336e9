"""Pretrain an embedded task's base model from scratch, reproducibly, on a CPU in minutes.

    from sdbench.pretrain import pretrain, base_statistics, demo_loglik_gain
    info = pretrain(load_task("graph_paths"), seed=0, out_dir="runs/pretrained/graph_paths-seed0")
    model, tok = load_model(info["out_dir"])
    base_statistics(model, tok, task, task.problems("test", 100), n=32, seed=0)
    demo_loglik_gain(model, tok, task, task.problems("test", 100))

Or from the shell: `sdbench pretrain graph_paths --seed 0 --out DIR`.

The corpus is `task.pretraining_texts(rng, count)`. A text `"PROMPT\\tCOMPLETION"` is trained on its
completion tokens and EOS only (the prompt is context); a text without a TAB is trained on every
token. The tokenizer is word-level (WordLevel + whitespace split, built with `tokenizers`) and the
model a small `LlamaForCausalLM`; both are saved with `save_pretrained`, so `load_model` reads them
offline. The output directory appears atomically (written to a temp dir, then renamed), with a
`pretrain.json` holding the seed, steps, corpus hash, final loss and wall time.

Defaults: 3 layers × 64 wide, 1000 AdamW steps of 32 examples, 1 thread; a task's `pretrain_defaults`
override them (the shipped graph_paths model: 4000 steps, about 7.5 CPU minutes). Wider/deeper models
and a loss on prompt tokens (`prompt_weight`) were tried on graph_paths and learned the edge look-ups
more slowly in the same budget; one word per edge (task version 3) is what made them learnable.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sdbench.core.model import encode_prompt, tokenizer_info
from sdbench.core.objective import score_logits, upcast
from sdbench.errors import UserError
from sdbench.task import Pretrainable, Problem, Task, stable_rng

SPECIALS = ("<bos>", "<eos>", "<pad>", "<unk>")
COMPLETION_SEP = "\t"


def split_text(text: str) -> tuple[str, str | None]:
    """(prompt, completion) of a corpus text; completion None when the whole text is trained on."""
    if COMPLETION_SEP in text:
        prompt, completion = text.split(COMPLETION_SEP, 1)
        return prompt, completion
    return text, None


def build_tokenizer(texts: Sequence[str]):  # -> transformers.PreTrainedTokenizerFast
    """A word-level tokenizer over every whitespace-separated word of `texts` (sorted: deterministic)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for text in texts for w in text.split()} - set(SPECIALS))
    vocab = {tok: i for i, tok in enumerate([*SPECIALS, *words])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    # Decoding joins words with single spaces (the WordPiece decoder does exactly that for whole words).
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<bos>", eos_token="<eos>",
                                   pad_token="<pad>", unk_token="<unk>", clean_up_tokenization_spaces=False)


def encode_example(tok, text: str) -> tuple[list[int], list[int], list[float]]:
    """(input ids, labels, completion mask) of one corpus text; labels are -100 where nothing is
    predicted (BOS), the mask is 1.0 on completion tokens and EOS, 0.0 on the prompt."""
    prompt, completion = split_text(text)
    eos = tok.eos_token_id
    context = encode_prompt(tok, prompt)
    if completion is None:
        ids = [*context, eos]
        return ids, [-100, *ids[1:]], [0.0, *[1.0] * (len(ids) - 1)]
    target = [*tok(completion, add_special_tokens=False)["input_ids"], eos]
    return context + target, [-100, *context[1:], *target], [0.0] * len(context) + [1.0] * len(target)


def encode_examples(tok, texts: Sequence[str]) -> list[tuple[list[int], list[int], list[float]]]:
    """`encode_example` for many texts at once (the batched fast tokenizer: seconds, not minutes)."""
    parts = [split_text(t) for t in texts]
    prompts = tok([p for p, _ in parts], add_special_tokens=False)["input_ids"]
    completions = tok([c or "" for _, c in parts], add_special_tokens=False)["input_ids"]
    bos, eos = tok.bos_token_id, tok.eos_token_id
    out = []
    for (_, completion), p_ids, c_ids in zip(parts, prompts, completions, strict=True):
        context = p_ids if bos is None or (p_ids and p_ids[0] == bos) else [bos, *p_ids]
        if completion is None:
            ids = [*context, eos]
            out.append((ids, [-100, *ids[1:]], [0.0, *[1.0] * (len(ids) - 1)]))
        else:
            target = [*c_ids, eos]
            out.append((context + target, [-100, *context[1:], *target], [0.0] * len(context) + [1.0] * len(target)))
    return out


def _token_logprobs(model, examples: Sequence[tuple[list[int], list[int], list[float]]], pad_id: int,
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """log p of every token after the first given its prefix, flat over the examples, from the core's scorer
    (`sdbench.core.objective.score_logits`, the padded route: one forward over the right-padded batch), and
    each token's completion mask (1.0 on completion tokens and EOS)."""
    logits = score_logits(model, [ids[:1] for ids, _, _ in examples], [ids[1:] for ids, _, _ in examples], pad_id,
                          "padded")
    targets = torch.tensor([t for ids, _, _ in examples for t in ids[1:]], dtype=torch.long, device=logits.device)
    logp = torch.log_softmax(upcast(logits), dim=-1).gather(1, targets[:, None]).squeeze(1)
    completion = torch.tensor([c for _, _, mask in examples for c in mask[1:]], dtype=logp.dtype,
                              device=logp.device)
    return logp, completion


# The defaults of `pretrain`; a task may override any of them with a `pretrain_defaults` mapping
# (the recipe of its shipped model), and explicit arguments override both.
DEFAULTS: dict[str, Any] = {"steps": 1000, "batch_size": 32, "lr": 4e-3, "hidden": 64, "layers": 3, "heads": 4,
                            "corpus_size": None, "prompt_weight": 0.0}


def resolve_recipe(task: Task, **given: Any) -> dict[str, Any]:
    """The pretraining recipe: `DEFAULTS` <- the task's `pretrain_defaults` <- the arguments not None."""
    return {**DEFAULTS, **dict(getattr(task, "pretrain_defaults", {})),
            **{k: v for k, v in given.items() if v is not None}}


def pretrain(task: Task | str, *, seed: int, out_dir: str | Path, steps: int | None = None,
             batch_size: int | None = None, lr: float | None = None, hidden: int | None = None,
             layers: int | None = None, heads: int | None = None, threads: int = 1,
             corpus_size: int | None = None, prompt_weight: float | None = None, force: bool = False,
             on_step: Callable[[int, float], None] | None = None) -> dict[str, Any]:
    """Train `task`'s base model from scratch; returns the `pretrain.json` record (plus `out_dir`).

    Deterministic on CPU for a given (seed, threads). Arguments left None come from the task's
    `pretrain_defaults`, then `DEFAULTS`. `corpus_size` defaults to steps × batch_size (every
    example seen once); `on_step(step, loss)` reports progress.
    """
    if isinstance(task, str):
        from sdbench.task import load_task
        task = load_task(task)
    if not isinstance(task, Pretrainable):
        raise UserError(f"task {task.name!r} cannot make its own pretraining corpus",
                        "pretrain works on embedded tasks that define pretraining_texts")
    recipe = resolve_recipe(task, steps=steps, batch_size=batch_size, lr=lr, hidden=hidden, layers=layers,
                            heads=heads, corpus_size=corpus_size, prompt_weight=prompt_weight)
    out = Path(out_dir)
    if out.exists() and not force:
        raise UserError(f"{str(out)!r} already exists", "pass --force to replace it, or pick another --out")
    started = time.time()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)

    texts = task.pretraining_texts(random.Random(seed), recipe["corpus_size"] or recipe["steps"] * recipe["batch_size"])
    tok = build_tokenizer(texts)
    model = _new_model(tok, recipe)
    losses = _train(model, encode_examples(tok, texts), tokenizer_info(tok).pad_id, recipe, seed, on_step)
    steps = recipe["steps"]
    record = {"task": task.name, "seed": seed,
              **{k: recipe[k] for k in ("steps", "batch_size", "lr", "prompt_weight", "hidden", "layers")},
              "threads": threads, "corpus_size": len(texts),
              "corpus_hash": hashlib.sha256("\n".join(texts).encode()).hexdigest(), "vocab_size": len(tok),
              "parameters": sum(p.numel() for p in model.parameters()),
              "final_loss": float(np.mean(losses[-max(1, steps // 20):])),
              "wall_time_s": round(time.time() - started, 2)}
    model.eval()
    _save_atomically(model, tok, record, out)
    return {**record, "out_dir": str(out)}


def _new_model(tok, recipe: Mapping[str, Any]):  # -> transformers.LlamaForCausalLM
    """A freshly initialized small Llama (tied embeddings) over `tok`'s vocabulary, in the recipe's shape."""
    from transformers import LlamaConfig, LlamaForCausalLM

    info, hidden, heads = tokenizer_info(tok), recipe["hidden"], recipe["heads"]
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=4 * hidden,
                         num_hidden_layers=recipe["layers"], num_attention_heads=heads, num_key_value_heads=heads,
                         max_position_embeddings=512, tie_word_embeddings=True,
                         bos_token_id=tok.bos_token_id, eos_token_id=info.eos_id, pad_token_id=info.pad_id)
    return LlamaForCausalLM(config)


def _train(model, examples: Sequence[tuple[list[int], list[int], list[float]]], pad_id: int,
           recipe: Mapping[str, Any], seed: int, on_step: Callable[[int, float], None] | None) -> list[float]:
    """`recipe["steps"]` AdamW steps of `recipe["batch_size"]` examples in a seeded order (cycling through
    them), linear warmup then cosine decay to 10%; returns the loss of every step."""
    steps, batch_size, prompt_weight = recipe["steps"], recipe["batch_size"], recipe["prompt_weight"]
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe["lr"], weight_decay=0.01, betas=(0.9, 0.98))
    warmup = max(1, steps // 20)

    def schedule(step: int) -> float:  # linear warmup, cosine decay to 10%
        if step < warmup:
            return (step + 1) / warmup
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    order = np.random.default_rng(seed).permutation(len(examples))
    losses: list[float] = []
    for step in range(steps):
        batch = [examples[order[(step * batch_size + j) % len(order)]] for j in range(batch_size)]
        # Weighted mean NLL: completion tokens count 1, prompt tokens `prompt_weight` (their
        # in-context structure — which nodes follow which — speeds up learning to follow edges).
        logp, completion = _token_logprobs(model, batch, pad_id)
        weight = completion + prompt_weight * (1 - completion)
        loss = -(logp * weight).sum() / weight.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        if on_step is not None:
            on_step(step + 1, losses[-1])
    return losses


def _save_atomically(model, tok, record: Mapping[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        (tmp / "pretrain.json").write_text(json.dumps(record, indent=2) + "\n")
        if out.exists():  # only reached with force: swap the old directory out, then drop it
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.rename(out, old / "dir")
            os.rename(tmp, out)
            shutil.rmtree(old)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@torch.no_grad()
def completion_logprobs(model, tok, prompts: Sequence[str], completions: Sequence[str],
                        batch_size: int = 128) -> list[float]:
    """log p(completion + EOS | prompt) under `model`, in nats, one per pair (the core's scorer, as training)."""
    info = tokenizer_info(tok)
    out: list[float] = []
    pairs = encode_examples(tok, [p + COMPLETION_SEP + c for p, c in zip(prompts, completions, strict=True)])
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        logp, completion = _token_logprobs(model, chunk, info.pad_id)
        bounds = np.cumsum([0, *[len(ids) - 1 for ids, _, _ in chunk]])
        per_token = (logp * completion).cpu()
        out.extend(float(per_token[a:b].sum()) for a, b in zip(bounds[:-1], bounds[1:], strict=True))
    return out


def default_demos(problem: Problem) -> dict[str, str]:
    """The demos whose gain is measured: the reference, and one other valid path ("minority")."""
    demos = {"canonical": problem.reference}
    others = [p for p in problem.data.get("paths", ()) if p != problem.reference]
    if others:
        demos["minority"] = stable_rng("minority", problem.id).choice(others)
    return demos


def demo_loglik_gain(model, tok, task: Task, problems: Sequence[Problem],
                     demos: Callable[[Problem], Mapping[str, str]] = default_demos) -> dict[str, float]:
    """Mean over problems of log p(d | teacher_prompt(x, [d])) − log p(d | x), per kind of demo d (nats).

    Positive: showing a demonstration makes the model more likely to write it — the teacher
    context carries information. Kinds default to "canonical" (the reference) and "minority".
    """
    kinds: dict[str, list[tuple[Problem, str]]] = {}
    for problem in problems:
        for kind, demo in demos(problem).items():
            kinds.setdefault(kind, []).append((problem, demo))
    gains = {}
    for kind, pairs in kinds.items():
        plain = completion_logprobs(model, tok, [p.prompt for p, _ in pairs], [d for _, d in pairs])
        shown = completion_logprobs(model, tok, [task.teacher_prompt(p, [d]) for p, d in pairs],
                                    [d for _, d in pairs])
        gains[kind] = float(np.mean(np.array(shown) - np.array(plain)))
    return gains


def base_statistics(model, tok, task: Task, problems: Sequence[Problem], *, n: int = 32,
                    seed: int = 0) -> dict[str, float]:
    """Mean of every per-problem metric of `evaluate_split` (pass@1 … pass@n, distinct_correct, ...)."""
    from sdbench.eval.evaluate import evaluate_split
    from sdbench.eval.metrics import problem_metrics

    result = evaluate_split(model, tok, task, problems, n=n, seed=seed)
    return {name: float(np.mean(values)) for name, values in problem_metrics(result.problems).items()}
