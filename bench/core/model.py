"""Loading causal LMs and their tokenizers, offline unless the user names a hub id.

`load_model(path)` takes a local transformers directory (the embedded base models shipped under
sdbench/tasks/assets/, or any saved checkpoint), a prepared model's name (`sdbench.models`, e.g.
`smollm2-135m-instruct`) or a hub id. Local paths never touch the network. Local llama / qwen2
directories load through `sdbench.core.llama` (no transformers import); the rest, and hub ids, through
transformers. `encode_prompt` renders a prompt in a task's `PromptFormat` (chat template or plain,
system turn or none), which every cell records.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sdbench.errors import UserError
from sdbench.models import is_local


@dataclass
class TokenizerInfo:
    bos_id: int | None
    eos_id: int
    pad_id: int


def load_tokenizer(path: str):  # -> transformers.PreTrainedTokenizerBase
    from transformers import AutoTokenizer

    local = is_local(path)
    try:
        tok = AutoTokenizer.from_pretrained(path, local_files_only=local)
    except Exception as exc:
        raise UserError(f"cannot load a tokenizer from {path!r}: {type(exc).__name__}",
                        "pass a transformers model directory or a hub id") from exc
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def quiet_transformers() -> None:
    """No per-load progress bars or advisory warnings in benchmark output."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def load_model(path: str, dtype: torch.dtype = torch.float32, *, native: bool = True):
    """(model, tokenizer) from a local directory or a hub id; the model in eval mode.

    A local llama / qwen2 directory that `sdbench.core.llama` implements exactly (the embedded testbeds'
    models among them) is read without importing transformers, unless `native=False` (tests that need
    transformers' own forward with its KV cache, as the reference sampler does)."""
    from sdbench.models import resolve_model

    path = resolve_model(path)
    local = is_local(path)
    if local and not (Path(path).expanduser() / "config.json").is_file():
        raise UserError(f"{path!r} is not a model directory (no config.json)",
                        "pass a directory written by save_pretrained, or a hub id")
    if local and native:
        from sdbench.core.llama import load_native

        try:
            loaded = load_native(path, dtype)
        except Exception as exc:
            raise UserError(f"cannot load a model from {path!r}: {type(exc).__name__}: {exc}".splitlines()[0],
                            "check the model directory's config.json and weights") from exc
        if loaded is not None:
            return loaded
    from transformers import AutoModelForCausalLM

    quiet_transformers()
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, local_files_only=local)
    except Exception as exc:
        raise UserError(f"cannot load a model from {path!r}: {type(exc).__name__}: {exc}".splitlines()[0],
                        "check the path or hub id") from exc
    model.eval()
    return model, load_tokenizer(path)


def tokenizer_info(tok) -> TokenizerInfo:
    eos = tok.eos_token_id
    if eos is None:
        raise UserError("the tokenizer has no end-of-sequence token", "set eos_token in its config")
    pad = tok.pad_token_id if tok.pad_token_id is not None else eos
    return TokenizerInfo(bos_id=tok.bos_token_id, eos_id=eos, pad_id=pad)


@dataclass(frozen=True)
class PromptFormat:
    """How a task's prompt text becomes the model's context (a task setting: `prompt_format` on its class).

    chat: True renders the text as one user turn of the tokenizer's chat template plus the generation
    prompt; False the plain text; None (the default) the chat template when the tokenizer has one.
    system: a system turn put before the user turn (chat only); None gives none, so the template's own
    default applies where it has one (SmolLM2's inserts "You are a helpful AI assistant named SmolLM...").
    examples: few-shot (question, answer) pairs put before the prompt: as user / assistant turns in chat form,
    as "question\nanswer\n\n" blocks in plain form. Student and teacher contexts get the same ones.
    """

    chat: bool | None = None
    system: str | None = None
    examples: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "examples", tuple(tuple(e) for e in self.examples))

    def to_json(self) -> dict[str, Any]:
        return {"chat": self.chat, "system": self.system, "examples": [list(e) for e in self.examples]}


def prompt_format(task: Any) -> PromptFormat:
    """The task's prompt format (`prompt_format` class attribute: a PromptFormat or its dict), else the default."""
    fmt = getattr(task, "prompt_format", None)
    if fmt is None:
        return PromptFormat()
    return fmt if isinstance(fmt, PromptFormat) else PromptFormat(**fmt)


def encode_prompt(tok, text: str, fmt: PromptFormat | None = None) -> list[int]:
    """Token ids of a prompt — student and teacher contexts alike, so both see the same template.

    In chat form (fmt.chat, or by default when the tokenizer has a chat template) the text is one user
    turn (after fmt.system, when given) plus the generation prompt (a student/teacher template mismatch
    is a known pitfall of OPSD implementations); otherwise the plain text, with BOS where the tokenizer
    has one and does not add it itself.
    """
    fmt = fmt or PromptFormat()
    has_template = bool(getattr(tok, "chat_template", None))
    if fmt.chat and not has_template:
        raise UserError("the task's prompt format asks for a chat template, but the tokenizer has none",
                        "use a chat model (e.g. --model smollm2-135m-instruct) or a plain-format task")
    if has_template if fmt.chat is None else fmt.chat:
        turns = ([{"role": "system", "content": fmt.system}] if fmt.system is not None else [])
        for question, answer in fmt.examples:
            turns += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        turns.append({"role": "user", "content": text})
        rendered = tok.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
        return tok(rendered, add_special_tokens=False)["input_ids"]
    text = "".join(f"{q}\n{a}\n\n" for q, a in fmt.examples) + text
    ids = tok(text, add_special_tokens=False)["input_ids"]
    if tok.bos_token_id is not None and (not ids or ids[0] != tok.bos_token_id):
        ids = [tok.bos_token_id, *ids]
    return ids


def weights_hash(path: str) -> str:
    """`sdbench.results.weights.weights_sha256` of a model directory or catalogue name (provenance); '' for hub
    ids not on disk."""
    from sdbench.models import resolve_model
    from sdbench.results.weights import weights_sha256

    return weights_sha256(resolve_model(path))


def set_threads(n: int | None) -> None:
    """Intra-op threads for this process (workers share the cores, so each gets a slice)."""
    if n:
        torch.set_num_threads(n)
        os.environ["OMP_NUM_THREADS"] = str(n)
