"""Llama-family causal LMs and their tokenizers in plain torch + `tokenizers`, read from a transformers
directory without importing transformers.

    model, tok = load_native(path)     # None when the directory is not one this module implements
    model(input_ids=ids, attention_mask=mask).logits

Why: importing transformers' model classes costs ~2.7 s per process (it pulls in torch._dynamo and
torch.distributed.tensor), which was 13% of a quick cell and most of its set-up, while sdbench's own
sampler and scorer (`sdbench.core._decode.LlamaDecoder`, `sdbench.core._forward.PrefixScorer`) only
read the model's weights. So `sdbench.core.model.load_model` builds the embedded testbeds' models
(and any local llama / qwen2 checkpoint in one safetensors file, default RoPE, no dropout) here.

The module tree, the parameter names and their registration order are transformers' own
(`model.layers.N.self_attn.q_proj.weight`, ..., the head tied to the embedding as in the file's
config), so state dicts, training checkpoints, the optimizer's and the gradient norm's parameter
order, and everything that reads the modules are what they are with `LlamaForCausalLM`; the RoPE
table is computed by transformers' own formula, op for op. `forward` is the full padded forward
(the loss's fallback route and the gate); it has no KV cache (`sdbench.core.sampling` decodes with
its own). tests/test_llama.py checks names, RoPE tables, logits, gradients and tokenization
against transformers, and that a trained cell's record is unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

NATIVE_TYPES = ("llama", "qwen2")
WEIGHTS = "model.safetensors"


class NativeConfig(SimpleNamespace):
    """config.json's keys as attributes (a missing key reads through getattr's default, as callers do)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NativeConfig:
        self = cls(**data)
        self.head_dim = data.get("head_dim") or data["hidden_size"] // data["num_attention_heads"]
        self.num_key_value_heads = data.get("num_key_value_heads") or data["num_attention_heads"]
        # transformers 5 writes rope_parameters; older configs a top-level rope_theta
        self.rope_theta = float((data.get("rope_parameters") or {}).get("rope_theta", data.get("rope_theta", 10000.0)))
        return self


def native_reason(data: dict[str, Any], root: Path) -> str | None:
    """Why this checkpoint needs transformers (None: it does not)."""
    if data.get("model_type") not in NATIVE_TYPES:
        return f"model_type {data.get('model_type')!r}"
    if not (root / WEIGHTS).is_file():
        return f"no single {WEIGHTS}"
    rope = data.get("rope_parameters") or {"rope_type": "default"}
    if data.get("rope_scaling") or rope.get("rope_type", "default") != "default":
        return "a RoPE variant"
    if data.get("hidden_act", "silu") != "silu" or (data.get("pretraining_tp") or 1) != 1:
        return "an activation or tensor-parallel layout"
    if float(data.get("attention_dropout") or 0.0) != 0.0 or data.get("use_sliding_window"):
        return "attention dropout or a sliding window"
    if data.get("model_type") == "llama" and data.get("mlp_bias"):
        return "MLP biases"
    return None


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.variance_epsilon = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # transformers' LlamaRMSNorm, op for op: the statistics in fp32 whatever the model's dtype
        dtype = x.dtype
        x = x.to(torch.float32)
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return self.weight * x.to(dtype)


class RotaryEmbedding(nn.Module):
    """Default RoPE: (cos, sin) [batch, positions, head_dim] as transformers' LlamaRotaryEmbedding computes them."""

    def __init__(self, config: NativeConfig) -> None:
        super().__init__()
        self.dim, self.base = config.head_dim, config.rope_theta
        self.attention_scaling = 1.0
        self.register_buffer("inv_freq", torch.empty(self.dim // 2), persistent=False)
        self.register_buffer("original_inv_freq", torch.empty(self.dim // 2), persistent=False)
        if self.inv_freq.device.type != "meta":   # (math on meta tensors would import torch._dynamo)
            self.reset()

    def reset(self) -> None:
        """Compute the buffers (load_native builds on the meta device, then calls this)."""
        arange = torch.arange(0, self.dim, 2, dtype=torch.int64, device=self.inv_freq.device)
        self.inv_freq = 1.0 / (self.base ** (arange.to(dtype=torch.float) / self.dim))
        self.original_inv_freq = self.inv_freq.clone()

    @torch.no_grad()
    def forward(self, x: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inv = self.inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1).to(x.device)
        freqs = (inv.float() @ position_ids[:, None, :].float()).transpose(1, 2)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos() * self.attention_scaling, emb.sin() * self.attention_scaling
        return cos.to(dtype=x.dtype), sin.to(dtype=x.dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Attention(nn.Module):
    def __init__(self, config: NativeConfig) -> None:
        super().__init__()
        self.head_dim = config.head_dim
        self.heads, self.kv_heads = config.num_attention_heads, config.num_key_value_heads
        self.scaling = self.head_dim ** -0.5
        qwen = config.model_type == "qwen2"
        qkv_bias = True if qwen else bool(getattr(config, "attention_bias", False))
        o_bias = False if qwen else bool(getattr(config, "attention_bias", False))
        hidden = config.hidden_size
        self.q_proj = nn.Linear(hidden, self.heads * self.head_dim, bias=qkv_bias)
        self.k_proj = nn.Linear(hidden, self.kv_heads * self.head_dim, bias=qkv_bias)
        self.v_proj = nn.Linear(hidden, self.kv_heads * self.head_dim, bias=qkv_bias)
        self.o_proj = nn.Linear(self.heads * self.head_dim, hidden, bias=o_bias)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        q = self.q_proj(x).view(b, s, -1, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, s, -1, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, s, -1, self.head_dim).transpose(1, 2)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        q, k = q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scaling,
                                             enable_gqa=self.kv_heads != self.heads)
        return self.o_proj(out.transpose(1, 2).reshape(b, s, -1))


class MLP(nn.Module):
    def __init__(self, config: NativeConfig) -> None:
        super().__init__()
        hidden, inter = config.hidden_size, config.intermediate_size
        self.gate_proj = nn.Linear(hidden, inter, bias=False)
        self.up_proj = nn.Linear(hidden, inter, bias=False)
        self.down_proj = nn.Linear(inter, hidden, bias=False)
        self.act_fn = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, config: NativeConfig) -> None:
        super().__init__()
        self.self_attn = Attention(config)
        self.mlp = MLP(config)
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class Body(nn.Module):
    """transformers' LlamaModel: embeddings, layers, the final norm; hidden states after that norm."""

    def __init__(self, config: NativeConfig) -> None:
        super().__init__()
        self.padding_idx = getattr(config, "pad_token_id", None)
        # _weight: no normal_ init (on the meta device that would import torch._dynamo: 1.7 s)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, self.padding_idx,
                                         _weight=torch.empty(config.vocab_size, config.hidden_size))
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.rotary_emb = RotaryEmbedding(config)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, **unused: Any) -> SimpleNamespace:
        if unused.get("use_cache") or unused.get("past_key_values") is not None:
            raise TypeError("the native Llama has no KV cache: load the model with transformers for that")
        b, s = input_ids.shape
        device = input_ids.device
        if position_ids is None:          # as transformers without a cache: 0..s-1 whatever the padding
            position_ids = torch.arange(s, device=device).unsqueeze(0).expand(b, -1)
        keys = torch.ones((b, s), dtype=torch.bool, device=device) if attention_mask is None else attention_mask.bool()
        causal = torch.ones((s, s), dtype=torch.bool, device=device).tril()
        eye = torch.eye(s, dtype=torch.bool, device=device)
        # causal over valid keys; a pad query also sees itself (finite, never read: no valid query sees it)
        mask = (causal & (keys.unsqueeze(1) | eye)).unsqueeze(1)
        x = self.embed_tokens(input_ids)
        cos, sin = self.rotary_emb(x, position_ids)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return SimpleNamespace(last_hidden_state=self.norm(x))


class NativeCausalLM(nn.Module):
    """transformers' LlamaForCausalLM / Qwen2ForCausalLM layout: `model` (the body) and `lm_head`."""

    def __init__(self, config: NativeConfig) -> None:
        super().__init__()
        self.config = config
        self.model = Body(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if getattr(config, "tie_word_embeddings", False):
            self.lm_head.weight = self.model.embed_tokens.weight

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def get_decoder(self) -> Body:
        return self.model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                **unused: Any) -> SimpleNamespace:
        """`.logits` [batch, positions, vocab]; with `labels`, `.loss` as transformers' causal LMs compute it
        (next-token cross-entropy in fp32, labels shifted inside, -100 ignored, mean over the rest)."""
        hidden = self.model(input_ids, attention_mask, position_ids, **unused).last_hidden_state
        logits = self.lm_head(hidden)
        loss = None
        if labels is not None:
            shifted = F.pad(labels, (0, 1), value=-100)[..., 1:].to(logits.device)
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), shifted.reshape(-1), ignore_index=-100)
        return SimpleNamespace(logits=logits, loss=loss)


class NativeTokenizer:
    """The slice of transformers' fast-tokenizer interface sdbench uses, over tokenizer.json (and the chat
    template, from chat_template.jinja or tokenizer_config.json, rendered as transformers renders it)."""

    def __init__(self, root: Path, special: dict[str, Any]) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(root / "tokenizer.json"))
        template_file = root / "chat_template.jinja"
        self.chat_template = template_file.read_text() if template_file.is_file() else special.get("chat_template")
        for role in ("bos", "eos", "pad", "unk"):
            token = special.get(f"{role}_token")
            token = token.get("content") if isinstance(token, dict) else token
            setattr(self, f"{role}_token", token)
            setattr(self, f"{role}_token_id", None if token is None else self._tok.token_to_id(token))
        if self.pad_token_id is None:            # as load_tokenizer does for transformers' tokenizers
            self.pad_token, self.pad_token_id = self.eos_token, self.eos_token_id

    def __call__(self, text: str | list[str], add_special_tokens: bool = True) -> dict[str, list]:
        """{"input_ids", "attention_mask"} of one text, or lists of them for a list of texts (no padding)."""
        if isinstance(text, str):
            ids = self._tok.encode(text, add_special_tokens=add_special_tokens).ids
            return {"input_ids": ids, "attention_mask": [1] * len(ids)}
        encoded = [e.ids for e in self._tok.encode_batch(list(text), add_special_tokens=add_special_tokens)]
        return {"input_ids": encoded, "attention_mask": [[1] * len(ids) for ids in encoded]}

    def apply_chat_template(self, messages: list[dict[str, str]], tokenize: bool = False,
                            add_generation_prompt: bool = False) -> str:
        """The rendered conversation (text only): transformers' renderer, a sandboxed jinja2 environment with
        trim_blocks and lstrip_blocks, the special tokens as variables (tests/test_llama.py compares)."""
        if tokenize or not self.chat_template:
            raise ValueError("the native tokenizer renders a chat template to text only (tokenize=False)")
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                            extensions=["jinja2.ext.loopcontrols"])
        return env.from_string(self.chat_template).render(
            messages=messages, add_generation_prompt=add_generation_prompt, bos_token=self.bos_token or "",
            eos_token=self.eos_token or "", pad_token=self.pad_token or "", unk_token=self.unk_token or "")

    def convert_tokens_to_ids(self, tokens: str | list[str]) -> int | None | list[int | None]:
        if isinstance(tokens, str):
            return self._tok.token_to_id(tokens)
        return [self._tok.token_to_id(t) for t in tokens]

    def decode(self, ids: Any, skip_special_tokens: bool = False) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def __len__(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)


def tokenizer_reason(root: Path) -> str | None:
    """Why this tokenizer needs transformers (None: NativeTokenizer reads it the same way)."""
    config_file = root / "tokenizer_config.json"
    if not (root / "tokenizer.json").is_file() or not config_file.is_file():
        return "no tokenizer.json"
    special = json.loads(config_file.read_text())
    if special.get("clean_up_tokenization_spaces") or special.get("tokenizer_class") not in ("TokenizersBackend",
                                                                                             "PreTrainedTokenizerFast"):
        return "a tokenizer class or decoding clean-up of its own"
    return None


def load_native(path: str, dtype: torch.dtype = torch.float32) -> tuple[NativeCausalLM, NativeTokenizer] | None:
    """(model in eval mode, tokenizer) from a local transformers directory, or None when it is not one this
    module implements exactly (then transformers loads it)."""
    root = Path(path).expanduser()
    data = json.loads((root / "config.json").read_text())
    if native_reason(data, root) or tokenizer_reason(root):
        return None
    from safetensors.torch import load_file

    config = NativeConfig.from_dict(data)
    with torch.device("meta"):              # no random init (nor global-RNG draws) for weights read next
        model = NativeCausalLM(config)
    model.to_empty(device="cpu")
    model.model.rotary_emb.reset()
    state = load_file(str(root / WEIGHTS))
    tied = getattr(config, "tie_word_embeddings", False)
    if tied:
        state.pop("lm_head.weight", None)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or set(missing) - ({"lm_head.weight"} if tied else set()):
        return None
    if tied:
        model.lm_head.weight = model.model.embed_tokens.weight
    model.to(dtype).eval()
    model.name_or_path = config._name_or_path = str(path)   # as transformers records it (the vLLM sampler reads it)
    special = json.loads((root / "tokenizer_config.json").read_text())
    return model, NativeTokenizer(root, special)
