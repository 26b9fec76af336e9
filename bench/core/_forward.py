"""Training-time scoring forward: hidden states at the positions that predict each completion, with
every distinct prefix (prompt, or teacher context) computed once.

    rows = score_hidden(model, prefixes, completions, pad_id)   # [sum(len(c)), H], final-normed
    logits = score_logits(model, prefixes, completions, pad_id, "shared")   # through the output head

Row block i holds the hidden states (after the last norm: what the output head multiplies) at the
positions that predict completions[i], of the sequence prefixes[i] + completions[i] — exactly what
`sdbench.core.scoring.gather_at(hidden_fn(model), ...)` returns, computed with less work:

  * Prefix sharing. The G rollouts of a prompt share it, and the teacher contexts of a group share
    their demo + question, so each distinct prefix is run once (its keys/values kept per layer) and
    each completion then runs alone, attending to its prefix's keys/values copied to its row. With
    gradients this is still exact: the copies are an index_select, whose backward sums the G rows'
    gradients into the one prefix (the order of that sum is the only difference from running the
    prefix G times, so results agree to float rounding, not bit for bit).
  * Only what the loss reads. The last completion token is never an input (nothing predicts from
    it), and in the prefix pass the last layer's attention output and MLP are computed at the last
    prefix position only (the other positions only feed later layers' keys/values, and there are none).
  * Little padding. Distinct prefixes are bucketed by length (a small DP trades padding for calls)
    and right-padded with a plain causal mask; completions are a few tokens, padded to the longest.
  * No transformers per-call machinery (mask building, cache objects): the model's own weights in a
    few dozen tensor ops per layer, as `sdbench.core._decode.LlamaDecoder` does for sampling (this
    class reuses its weight layout, RMSNorm and RoPE).

Llama-family models (llama, qwen2; GQA and q/k/v biases included) take this path
(`PrefixScorer.supports`); any other causal LM, a training-mode model with attention dropout, an fp64
model (see SHARED_FP64) or an empty prefix uses the padded transformers route (`gather_at`). Checked
against that route — loss and every gradient — in tests/test_forward.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from sdbench.core._decode import LlamaDecoder
from sdbench.core.scoring import gather_at, hidden_fn, logits_fn

# fp64 is the dtype of exactness tests (tests/test_objective_fused.py compares routes to rtol 1e-7).
# transformers' Llama RMSNorm computes in fp32 even in an fp64 model, so where a prefix is shared the
# gradients of its rows are summed before the norm's fp32 backward instead of after it: the same
# math, but fp32-level rounding differences, which those tests would flag. So fp64 models take the
# padded route unless this is set (tests/test_forward.py sets it, with the norm in fp64 on
# both routes, and checks the shared route to fp64 rounding).
SHARED_FP64 = False

# A prefix-pass call costs about this many tokens' worth of work in fixed overhead (a few dozen ops
# per layer); the bucketing DP pays padding up to that to save a call.
BUCKET_CALL_TOKENS = 32


def length_buckets(lengths: Sequence[int], call_tokens: int | None = None) -> list[list[int]]:
    """Indices of `lengths` grouped into buckets minimizing sum(count * max_len) + call_tokens * #buckets
    (contiguous runs of the sorted distinct lengths; exact DP over those). Default BUCKET_CALL_TOKENS."""
    call_tokens = BUCKET_CALL_TOKENS if call_tokens is None else call_tokens
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    values = sorted(set(lengths))
    count = [0] * len(values)
    pos = {v: k for k, v in enumerate(values)}
    for n in lengths:
        count[pos[n]] += 1
    prefix_count = [0]
    for c in count:
        prefix_count.append(prefix_count[-1] + c)
    k = len(values)
    best = [0.0] + [float("inf")] * k          # best[j]: cost of covering values[:j]
    cut = [0] * (k + 1)
    for j in range(1, k + 1):
        for i in range(j):
            cost = best[i] + (prefix_count[j] - prefix_count[i]) * values[j - 1] + call_tokens
            if cost < best[j]:
                best[j], cut[j] = cost, i
    bounds = []
    j = k
    while j > 0:
        bounds.append((cut[j], j))
        j = cut[j]
    buckets = []
    for lo, hi in reversed(bounds):
        lo_len, hi_len = values[lo], values[hi - 1]
        buckets.append([i for i in order if lo_len <= lengths[i] <= hi_len])
    return buckets


class _TakeRows(torch.autograd.Function):
    """index_select on dim 0 whose backward is an index_add_ of the contiguous gradient (autograd's own
    is a scatter_add_ over the strided gradient slice, ~30x slower on CPU at these shapes)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(index)
        ctx.rows = x.shape[0]
        return torch.index_select(x, 0, index)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (index,) = ctx.saved_tensors
        out = grad.new_zeros((ctx.rows, *grad.shape[1:]))
        return out.index_add_(0, index, grad.contiguous()), None


def take_rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return _TakeRows.apply(x, index) if x.requires_grad else torch.index_select(x, 0, index)


class PrefixScorer(LlamaDecoder):
    """Llama-family forward for scoring completions after shared prefixes (see the module docstring).

    Built per loss call, in the grad mode of the call: the fused q|k|v and gate|up weights are
    concatenations of the parameters, so gradients flow back to them.
    """

    @staticmethod
    def supports(model) -> bool:
        if not LlamaDecoder.supports(model):
            return False
        if next(model.parameters()).dtype == torch.float64 and not SHARED_FP64:
            return False
        dropout = float(getattr(model.config, "attention_dropout", 0.0) or 0.0)
        return not (model.training and dropout > 0.0)

    def __init__(self, model) -> None:
        super().__init__(model)
        self.padding_idx = model.model.embed_tokens.padding_idx

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        # F.embedding with the module's padding_idx: its backward zeroes that row as nn.Embedding's does.
        return F.embedding(ids, self.embed, self.padding_idx)

    def _rope_table(self, reach: int) -> tuple[torch.Tensor, torch.Tensor]:
        cos, sin = self.rotary(self.embed[:1], torch.arange(reach, device=self.device).unsqueeze(0))
        return cos[0], sin[0]

    def _heads(self, x: torch.Tensor, p: dict, cos: torch.Tensor, sin: torch.Tensor,
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, w, _ = x.shape
        q, k, v = F.linear(self._rms(x, p["ln1"]), *p["qkv"]).split((self.q_dim, self.kv_dim, self.kv_dim), dim=-1)
        q = self._rope(q.view(b, w, self.heads, self.head_dim).transpose(1, 2), cos, sin)
        k = self._rope(k.view(b, w, self.kv_heads, self.head_dim).transpose(1, 2), cos, sin)
        return q, k, v.view(b, w, self.kv_heads, self.head_dim).transpose(1, 2)

    def _attend(self, x: torch.Tensor, p: dict, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                mask: torch.Tensor | None) -> torch.Tensor:
        b, w = q.shape[0], q.shape[2]
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None, scale=self.scaling,
                                             **self.gqa)
        x = x + F.linear(att.transpose(1, 2).reshape(b, w, self.q_dim), *p["o"])
        return self._mlp(x, p)

    def _prefix_pass(self, ids: torch.Tensor, lengths: torch.Tensor, cos_t: torch.Tensor, sin_t: torch.Tensor,
                     ) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """Right-padded prefixes [n, W] -> per-layer keys/values [n, kv, W, d] and the final-normed hidden
        state at each prefix's last position [n, H]."""
        n, width = ids.shape
        cos, sin = cos_t[:width], sin_t[:width]
        keys, values = [], []
        x = self._embed(ids)
        last = lengths - 1
        for li, p in enumerate(self.layers):
            if li + 1 < len(self.layers):
                q, k, v = self._heads(x, p, cos, sin)
                x = self._attend(x, p, q, k, v, None)      # causal; pad queries see real tokens, stay finite
            else:
                # Last layer: keys/values everywhere, the query, attention output and MLP at the last
                # position only (flat index_select: its backward is an index_add, not an index_put).
                # One norm over all positions (as transformers): gradients from the query and from the
                # keys/values meet before the norm's backward, so they are rounded as they are there.
                w_qkv, b_qkv = p["qkv"]
                h = self._rms(x, p["ln1"])
                k, v = F.linear(h, w_qkv[self.q_dim:],
                                None if b_qkv is None else b_qkv[self.q_dim:]).split(self.kv_dim, dim=-1)
                k = self._rope(k.view(n, width, self.kv_heads, self.head_dim).transpose(1, 2), cos, sin)
                v = v.view(n, width, self.kv_heads, self.head_dim).transpose(1, 2)
                at_last = torch.arange(n, device=self.device) * width + last
                x = x.reshape(n * width, -1).index_select(0, at_last)
                h = h.reshape(n * width, -1).index_select(0, at_last)
                q = F.linear(h, w_qkv[:self.q_dim], None if b_qkv is None else b_qkv[:self.q_dim])
                q = self._rope(q.view(n, 1, self.heads, self.head_dim).transpose(1, 2),
                               cos_t[last].view(n, 1, 1, -1), sin_t[last].view(n, 1, 1, -1))
                mask = (torch.arange(width, device=self.device) < lengths.unsqueeze(1)).view(n, 1, 1, width)
                x = self._attend(x.unsqueeze(1), p, q, k, v, mask)
            keys.append(k)
            values.append(v)
        return keys, values, self._rms(x[:, -1], self.norm)

    def hidden_rows(self, prefixes: Sequence[Sequence[int]], completions: Sequence[Sequence[int]], pad_id: int,
                    ) -> torch.Tensor:
        slot: dict[tuple[int, ...], int] = {}
        of_row = [slot.setdefault(tuple(p), len(slot)) for p in prefixes]
        distinct = list(slot)
        plens = [len(p) for p in distinct]
        tails = [max(len(c) - 1, 0) for c in completions]   # completion tokens that are inputs
        width_s = max(tails)
        reach = max(plens) + max(width_s, 0) + 1
        cos_t, sin_t = self._rope_table(reach)

        # Prefix pass, bucket by bucket; keys/values gathered into one [P, kv, Wmax, d] per layer.
        wmax = max(plens)
        order: list[int] = []
        parts_k: list[list[torch.Tensor]] = [[] for _ in self.layers]
        parts_v: list[list[torch.Tensor]] = [[] for _ in self.layers]
        lasts = []
        for bucket in length_buckets(plens):
            width = max(plens[i] for i in bucket)
            ids = torch.tensor([[*distinct[i], *[pad_id] * (width - plens[i])] for i in bucket], dtype=torch.long)
            lengths = torch.tensor([plens[i] for i in bucket], device=self.device)
            keys, values, last = self._prefix_pass(ids.to(self.device), lengths, cos_t, sin_t)
            for li in range(len(self.layers)):     # room for the completion's own keys after Wmax
                parts_k[li].append(F.pad(keys[li], (0, 0, 0, wmax + max(width_s, 0) - width)))
                parts_v[li].append(F.pad(values[li], (0, 0, 0, wmax + max(width_s, 0) - width)))
            lasts.append(last)
            order.extend(bucket)
        place = [0] * len(distinct)                        # distinct prefix -> its row in bucket order
        for r, i in enumerate(order):
            place[i] = r
        last_h = torch.cat(lasts)                          # [P, H], bucket order
        b = len(completions)
        row_prefix = torch.tensor([place[i] for i in of_row], device=self.device)

        if width_s > 0:
            # Completion pass: each row's inputs (its completion but the last token) attend to its
            # prefix's keys/values (masked to the prefix's length) and causally to themselves.
            ids = torch.tensor([[*c[:-1], *[pad_id] * (width_s - n)] for c, n in zip(completions, tails, strict=True)],
                               dtype=torch.long)
            plen_row = torch.tensor([plens[i] for i in of_row], device=self.device)
            pos = plen_row.unsqueeze(1) + torch.arange(width_s, device=self.device)     # [B, S]
            cos, sin = cos_t[pos].unsqueeze(1), sin_t[pos].unsqueeze(1)                # [B, 1, S, d]
            seen = torch.arange(wmax, device=self.device) < plen_row.unsqueeze(1)       # [B, Wmax]
            causal = torch.ones((width_s, width_s), dtype=torch.bool, device=self.device).tril()
            mask = torch.cat([seen.view(b, 1, 1, wmax).expand(b, 1, width_s, wmax),
                              causal.view(1, 1, width_s, width_s).expand(b, 1, width_s, width_s)], dim=-1)
            x = self._embed(ids.to(self.device))
            for li, p in enumerate(self.layers):
                q, k, v = self._heads(x, p, cos, sin)
                # Each row's keys/values: its prefix's (one copy), then its own written in place
                # (autograd records the write; no second [B, kv, Wmax + S, d] copy as a cat would make).
                keys = take_rows(torch.cat(parts_k[li]) if len(parts_k[li]) > 1 else parts_k[li][0], row_prefix)
                values = take_rows(torch.cat(parts_v[li]) if len(parts_v[li]) > 1 else parts_v[li][0], row_prefix)
                keys[:, :, wmax:] = k
                values[:, :, wmax:] = v
                x = self._attend(x, p, q, keys, values, mask)
            tail_h = self._rms(x, self.norm).reshape(b * width_s, -1)
            flat = torch.cat([last_h, tail_h])
        else:
            flat = last_h
        # Row r's block: its prefix's last state, then its completion-pass states 0 .. len - 2.
        counts = torch.tensor([len(c) for c in completions], dtype=torch.long)   # an empty one has no rows
        row = torch.repeat_interleave(torch.arange(b), counts)
        t = torch.arange(int(counts.sum())) - torch.repeat_interleave(counts.cumsum(0) - counts, counts)
        index = torch.where(t == 0, row_prefix.cpu()[row], last_h.shape[0] + row * max(width_s, 0) + t - 1)
        return flat[index.to(self.device)]


def score_hidden(model, prefixes: Sequence[Sequence[int]], completions: Sequence[Sequence[int]], pad_id: int,
                 ) -> torch.Tensor:
    """Final hidden states [sum(len(c)), H] at the positions predicting each completion (module docstring);
    the padded transformers route where the fast one does not apply. An empty completion has no rows."""
    if PrefixScorer.supports(model) and all(len(p) > 0 for p in prefixes):
        return PrefixScorer(model).hidden_rows(prefixes, completions, pad_id)
    device = next(model.parameters()).device
    return gather_at(hidden_fn(model), [[*p, *c] for p, c in zip(prefixes, completions, strict=True)],
                     [len(p) for p in prefixes], [len(c) for c in completions], pad_id, device)


def score_logits(model, prefixes: Sequence[Sequence[int]], completions: Sequence[Sequence[int]], pad_id: int,
                 forward: str) -> torch.Tensor:
    """Logits [sum(len(c)), V] at the positions predicting each completion token of prefix + completion:
    "padded" from transformers' full forward (gather_at), "shared" from `score_hidden` through the output head
    (the padded route where the fast one does not apply)."""
    if forward == "shared" and PrefixScorer.supports(model):
        return model.get_output_embeddings()(score_hidden(model, prefixes, completions, pad_id))
    device = next(model.parameters()).device
    return gather_at(logits_fn(model), [[*p, *c] for p, c in zip(prefixes, completions, strict=True)],
                     [len(p) for p in prefixes], [len(c) for c in completions], pad_id, device)
