"""Decode backends for `sdbench.core.sampling.sample`: prefill each distinct prompt once, then step.

    dec = make_decoder(model)                  # LlamaDecoder when the architecture allows, else HFDecoder
    logits = dec.start(ids, valid, rows, T)    # [P, W] prompts (left-padded) -> [B, V] last-position logits
    logits = dec.step(tokens, keep)            # one new token per live row -> [b, V]

`rows[r]` names the prompt of decode row r: the prompt's KV cache is computed once (the old sampler
recomputed a prompt for each of its num_samples rows; prompts are ~10x longer than completions here, so
that was most of the work). `keep` (optional) drops finished rows first.

LlamaDecoder runs Llama-family models (llama, qwen2: RMSNorm, RoPE, gated MLP) straight from their
weights, so a step is a few dozen tensor ops and none of transformers' per-call mask/cache machinery
(which dominates the cost of a 64-wide model). The prompt's keys/values stay one copy per prompt: at
each step the new queries of all of a prompt's rows are scored against them in one matmul (the rows
laid out as a prompts x rows grid), each row's own generated keys (a preallocated buffer) separately,
and one softmax spans both parts. Copying the prompt cache to each of its G rows, as before, moved G
times the memory and ran G thin matmuls; this halves a 32-sample step's attention on CPU.
HFDecoder is the generic path for any other causal LM (transformers calls, the
cache expanded with `reorder_cache`). Both are checked against full-sequence transformers logits in
tests/test_sampling.py.
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F

_LLAMA_FAMILY = ("llama", "qwen2")


def cache_argument(model) -> str:
    """transformers >= 5.2x calls the KV cache `cache`; earlier releases `past_key_values`."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _positions(valid: torch.Tensor) -> torch.Tensor:
    """Position ids of left-padded rows: 0 at each row's first real token (pads get 0, masked anyway)."""
    return (valid.long().cumsum(-1) - 1).clamp(min=0)


class HFDecoder:
    """Any transformers causal LM: one prefill call per chunk of distinct prompts, then one call per step."""

    def __init__(self, model) -> None:
        self.model = model
        self.device = next(model.parameters()).device
        self.cache_arg = cache_argument(model)
        params = inspect.signature(model.forward).parameters
        self.keep_kw = {"logits_to_keep": 1} if "logits_to_keep" in params else {}

    def start(self, ids: torch.Tensor, valid: torch.Tensor, rows: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
        ids, valid, rows = ids.to(self.device), valid.to(self.device), rows.to(self.device)
        pos = _positions(valid)
        out = self.model(input_ids=ids, attention_mask=valid.long(), position_ids=pos, use_cache=True,
                         **self.keep_kw, **{self.cache_arg: None})
        self.cache = getattr(out, self.cache_arg)
        self.cache.reorder_cache(rows)                   # index_select on the batch axis: repeats allowed
        width = ids.shape[1]
        # The whole mask is known now (generated columns are always attended), so a step only slices it.
        self.mask = torch.ones((len(rows), width + max_new_tokens), dtype=torch.long, device=self.device)
        self.mask[:, :width] = valid.long()[rows]
        self.next_pos = pos[rows, -1:] + 1
        self.width, self.t = width, 0
        return out.logits[:, -1, :][rows]

    def step(self, tokens: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        if keep is not None:
            keep = keep.to(self.device)
            self.cache.reorder_cache(keep)
            self.mask, self.next_pos = self.mask[keep], self.next_pos[keep]
        self.t += 1
        out = self.model(input_ids=tokens.to(self.device).unsqueeze(1),
                         attention_mask=self.mask[:, :self.width + self.t], position_ids=self.next_pos + self.t - 1,
                         use_cache=True, **self.keep_kw, **{self.cache_arg: self.cache})
        self.cache = getattr(out, self.cache_arg)
        return out.logits[:, -1, :]


class LlamaDecoder:
    """Llama-family forward from the model's own modules' weights, over preallocated KV buffers.

    Built per `sample` call (the trainer updates the weights in place between calls); the fused
    q|k|v and gate|up weights are concatenations of a few small matrices.
    """

    @staticmethod
    def supports(model) -> bool:
        cfg = getattr(model, "config", None)
        inner = getattr(model, "model", None)
        if cfg is None or inner is None or getattr(cfg, "model_type", None) not in _LLAMA_FAMILY:
            return False
        if getattr(cfg, "use_sliding_window", False) or (getattr(cfg, "pretraining_tp", 1) or 1) != 1:
            return False
        if getattr(model, "lm_head", None) is None or not hasattr(inner, "rotary_emb"):
            return False
        attn = inner.layers[0].self_attn
        # Extra modules (q/k norms, gates) mean a variant this forward does not implement.
        known = {"q_proj", "k_proj", "v_proj", "o_proj"}
        return {name for name, _ in attn.named_children()} <= known and hasattr(attn, "scaling")

    def __init__(self, model) -> None:
        inner = model.model
        cfg = model.config
        self.embed = inner.embed_tokens.weight
        self.device, self.dtype = self.embed.device, self.embed.dtype
        self.rotary = inner.rotary_emb
        self.norm = (inner.norm.weight, inner.norm.variance_epsilon)
        self.head = (model.lm_head.weight, model.lm_head.bias)
        attn0 = inner.layers[0].self_attn
        self.head_dim = attn0.head_dim
        self.heads = cfg.num_attention_heads
        self.kv_heads = getattr(cfg, "num_key_value_heads", None) or self.heads
        self.scaling = attn0.scaling
        self.layers = []
        for layer in inner.layers:
            a, m = layer.self_attn, layer.mlp
            qkv_b = None if a.q_proj.bias is None else torch.cat([a.q_proj.bias, a.k_proj.bias, a.v_proj.bias])
            gu_b = None if m.gate_proj.bias is None else torch.cat([m.gate_proj.bias, m.up_proj.bias])
            self.layers.append(dict(
                ln1=(layer.input_layernorm.weight, layer.input_layernorm.variance_epsilon),
                ln2=(layer.post_attention_layernorm.weight, layer.post_attention_layernorm.variance_epsilon),
                qkv=(torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]), qkv_b),
                o=(a.o_proj.weight, a.o_proj.bias),
                gu=(torch.cat([m.gate_proj.weight, m.up_proj.weight]), gu_b),
                down=(m.down_proj.weight, m.down_proj.bias),
                act=m.act_fn, inter=m.gate_proj.out_features))
        self.q_dim = self.heads * self.head_dim
        self.kv_dim = self.kv_heads * self.head_dim
        self.gqa = {"enable_gqa": True} if self.kv_heads != self.heads else {}

    def _rms(self, x: torch.Tensor, norm: tuple[torch.Tensor, float]) -> torch.Tensor:
        # transformers' LlamaRMSNorm, op for op, so logits match it to rounding.
        w, eps = norm
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
        return w * xf.to(self.dtype)

    @staticmethod
    def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin

    def _mlp(self, x: torch.Tensor, p: dict) -> torch.Tensor:
        gate, up = F.linear(self._rms(x, p["ln2"]), *p["gu"]).split(p["inter"], dim=-1)
        return x + F.linear(p["act"](gate) * up, *p["down"])

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self._rms(x, self.norm), *self.head)

    def start(self, ids: torch.Tensor, valid: torch.Tensor, rows: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
        ids, valid, rows = ids.to(self.device), valid.to(self.device), rows.to(self.device)
        n_prompts, width = ids.shape
        batch, d = len(rows), self.head_dim
        pos = _positions(valid)
        # RoPE table for every position this chunk reaches, from the model's own rotary module
        # (any rope_type / scaling it implements).
        reach = int(pos[:, -1].max()) + max_new_tokens + 1
        cos_t, sin_t = self.rotary(self.embed[:1], torch.arange(reach, device=self.device).unsqueeze(0))
        cos_t, sin_t = cos_t[0], sin_t[0]
        cos, sin = cos_t[pos].unsqueeze(1), sin_t[pos].unsqueeze(1)            # [P, 1, W, d]
        causal = torch.ones((width, width), dtype=torch.bool, device=self.device).tril()
        eye = torch.eye(width, dtype=torch.bool, device=self.device)
        # A pad query attends to itself only: finite states there, never attended by real tokens.
        mask = (causal & (valid.unsqueeze(1) | eye)).unsqueeze(1)                 # [P, 1, W, W]
        self.prompt_k, self.prompt_v, self.k, self.v = [], [], [], []
        x = self.embed[ids]
        for p in self.layers:
            qkv = F.linear(self._rms(x, p["ln1"]), *p["qkv"])
            q, k, v = qkv.split((self.q_dim, self.kv_dim, self.kv_dim), dim=-1)
            q = self._rope(q.view(n_prompts, width, self.heads, d).transpose(1, 2), cos, sin)
            k = self._rope(k.view(n_prompts, width, self.kv_heads, d).transpose(1, 2), cos, sin)
            v = v.view(n_prompts, width, self.kv_heads, d).transpose(1, 2)
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scaling, **self.gqa)
            x = x + F.linear(att.transpose(1, 2).reshape(n_prompts, width, self.q_dim), *p["o"])
            x = self._mlp(x, p)
            self.prompt_k.append(k.contiguous())                                   # [P, kv, W, d], once
            self.prompt_v.append(v.contiguous())
            self.k.append(torch.empty((batch, self.kv_heads, max_new_tokens, d), dtype=self.dtype, device=self.device))
            self.v.append(torch.empty_like(self.k[-1]))
        # Pads of the prompt part: -inf before the softmax (every prompt has a real last token).
        self.prompt_bias = torch.zeros((n_prompts, 1, 1, width), dtype=self.dtype, device=self.device)
        self.prompt_bias.masked_fill_(~valid.view(n_prompts, 1, 1, width), float("-inf"))
        self._set_rows(rows)
        steps = pos[rows, -1:] + 1 + torch.arange(max_new_tokens, device=self.device)   # [B, T]
        self.cos, self.sin = cos_t[steps], sin_t[steps]                                 # [B, T, d]
        self.t = 0
        return self._logits(x[:, -1])[rows]

    def _set_rows(self, rows: torch.Tensor) -> None:
        """Decode row r belongs to prompt rows[r]. Prompts left without rows are dropped; the rows of the
        rest are laid out as a [P, G] grid (G = most rows of a prompt), row r at `slot[r]`."""
        present, rows = torch.unique(rows, sorted=True, return_inverse=True)
        if len(present) < self.prompt_k[0].shape[0]:
            self.prompt_k = [k[present] for k in self.prompt_k]
            self.prompt_v = [v[present] for v in self.prompt_v]
            self.prompt_bias = self.prompt_bias[present]
        counts = torch.bincount(rows, minlength=len(present))
        self.group = int(counts.max())
        order = torch.sort(rows, stable=True).indices
        rank = torch.empty_like(rows)
        rank[order] = torch.arange(len(rows), device=self.device) - (torch.cumsum(counts, 0) - counts)[rows[order]]
        self.rows, self.slot = rows, rows * self.group + rank
        # Every prompt has G rows, in order (the sampler's prompt-major chunks): the grid is the batch itself.
        in_order = torch.arange(len(rows), device=self.device)
        self.full_grid = len(rows) == len(present) * self.group and bool((self.slot == in_order).all())

    def _attend_cached(self, q: torch.Tensor, li: int, t: int) -> torch.Tensor:
        """Attention of each row's new query [b, H, d] over its prompt's keys (stored once per prompt, scored
        for all of the prompt's rows in one matmul: no per-row copy of the prompt cache) and its own
        generated keys 0..t; one softmax over both parts, as over their concatenation."""
        b, d = q.shape[0], self.head_dim
        kv, r = self.kv_heads, self.heads // self.kv_heads           # query head h reads key head h // r
        kp, vp = self.prompt_k[li], self.prompt_v[li]                # [P, kv, W, d]
        n_prompts, width, g = kp.shape[0], kp.shape[2], self.group
        if self.full_grid:
            qg = q
        else:
            qg = q.new_zeros((n_prompts * g, self.heads, d))
            qg[self.slot] = q
        qg = qg.view(n_prompts, g, kv, r, d).permute(0, 2, 1, 3, 4).reshape(n_prompts, kv, g * r, d)
        sp = torch.matmul(qg, kp.transpose(-1, -2)).mul_(self.scaling)                  # [P, kv, g*r, W]
        sp = sp.view(n_prompts, kv, g, r, width).add_(self.prompt_bias.unsqueeze(-2))
        sp = sp.permute(0, 2, 1, 3, 4).reshape(n_prompts * g, self.heads, width)
        if not self.full_grid:
            sp = sp[self.slot]
        ks, vs = self.k[li][:, :, :t + 1], self.v[li][:, :, :t + 1]                     # [b, kv, t+1, d]
        ss = torch.matmul(q.view(b, kv, r, d), ks.transpose(-1, -2)).mul_(self.scaling)  # [b, kv, r, t+1]
        probs = torch.cat([sp, ss.reshape(b, self.heads, t + 1)], dim=-1).softmax(-1)
        pp, ps = probs.split((width, t + 1), dim=-1)
        if not self.full_grid:
            pp = pp.new_zeros((n_prompts * g, self.heads, width)).index_copy_(0, self.slot, pp)
        pp = pp.reshape(n_prompts, g, kv, r, width).permute(0, 2, 1, 3, 4).reshape(n_prompts, kv, g * r, width)
        op = torch.matmul(pp, vp).view(n_prompts, kv, g, r, d).permute(0, 2, 1, 3, 4).reshape(n_prompts * g, -1)
        if not self.full_grid:
            op = op[self.slot]
        return op + torch.matmul(ps.reshape(b, kv, r, t + 1), vs).reshape(b, self.q_dim)

    def step(self, tokens: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        if keep is not None:
            keep = keep.to(self.device)
            self.k = [kb[keep] for kb in self.k]
            self.v = [vb[keep] for vb in self.v]
            self.cos, self.sin = self.cos[keep], self.sin[keep]
            self._set_rows(self.rows[keep])
        t = self.t
        self.t += 1
        batch, d = len(tokens), self.head_dim
        cos, sin = self.cos[:, t].unsqueeze(1), self.sin[:, t].unsqueeze(1)       # [b, 1, d]
        x = self.embed[tokens.to(self.device)]                                    # [b, hidden]
        for li, p in enumerate(self.layers):
            q, k, v = F.linear(self._rms(x, p["ln1"]), *p["qkv"]).split((self.q_dim, self.kv_dim, self.kv_dim), dim=-1)
            self.k[li][:, :, t] = self._rope(k.view(batch, self.kv_heads, d), cos, sin)
            self.v[li][:, :, t] = v.view(batch, self.kv_heads, d)
            att = self._attend_cached(self._rope(q.view(batch, self.heads, d), cos, sin), li, t)
            x = x + F.linear(att, *p["o"])
            x = self._mlp(x, p)
        return self._logits(x)


def make_decoder(model) -> LlamaDecoder | HFDecoder:
    return LlamaDecoder(model) if LlamaDecoder.supports(model) else HFDecoder(model)
