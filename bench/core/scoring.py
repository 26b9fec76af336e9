"""Scoring primitives of the loss: the rows of a model's output at the positions that predict each completion
token, and log p(y_t) from hidden states and the output head.

    rows = gather_at(hidden_fn(model), sequences, starts, lengths, pad_id, device)   # padded transformers route
    logp = chunked_token_logprob(rows, head, targets, temperature)                   # [N], chunked over tokens

The bottom of the loss modules: `sdbench.core._forward` (the prefix-sharing route, which falls back to
`gather_at`), `...policy_terms`, `...objective_fused` and `...objective` import these; this module imports
none of them, so the loss modules form no loop.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.checkpoint import checkpoint

CHUNK = 1024
KEEP_LOGITS_BELOW = 1 << 22   # logits elements (16 MB in fp32) kept for backward instead of recomputed


def gather_at(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], sequences: list[list[int]],
              starts: list[int], lengths: list[int], pad_id: int, device: torch.device,
              batch_size: int = 256) -> torch.Tensor:
    """Rows [sum(lengths), D] of fn(ids, mask) -> [B, L, D] at the positions that predict tokens
    seq[start : start+length] of each sequence (right-padded batches of `batch_size`)."""
    out = []
    for b in range(0, len(sequences), batch_size):
        seqs = sequences[b:b + batch_size]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, s in enumerate(seqs):
            ids[i, :len(s)] = torch.tensor(s)
            mask[i, :len(s)] = 1
        values = fn(ids.to(device), mask.to(device))
        rows = torch.cat([torch.full((n,), i, dtype=torch.long) for i, n in enumerate(lengths[b:b + batch_size])])
        cols = torch.cat([torch.arange(st - 1, st - 1 + n) for st, n in
                          zip(starts[b:b + batch_size], lengths[b:b + batch_size], strict=True)])
        out.append(values[rows.to(device), cols.to(device)])
    return torch.cat(out)


def upcast(x: torch.Tensor) -> torch.Tensor:
    """Softmax and divergence math in fp32 at least (fp64 stays fp64)."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def logits_fn(model) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    return lambda ids, mask: model(input_ids=ids, attention_mask=mask).logits


def hidden_fn(model):
    """Final hidden states (after the last norm): what the output head multiplies."""
    body = model.get_decoder() if hasattr(model, "get_decoder") else model.base_model
    return lambda ids, mask: body(input_ids=ids, attention_mask=mask).last_hidden_state


def _token_logprob(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, temperature: float,
                   ) -> torch.Tensor:
    logits = hidden @ weight.T
    logits = (logits if logits.dtype == torch.float64 else logits.float()) / temperature
    return logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def chunked_token_logprob(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                          temperature: float) -> torch.Tensor:
    """log p(y_t) per token, [N]; with a large vocabulary each chunk's logits are recomputed in
    backward, never all kept. Small [N x V] logits (tiny vocabularies) are kept: recomputing them
    would cost a matmul and a softmax to save a few MB."""
    if hidden.shape[0] * weight.shape[0] <= KEEP_LOGITS_BELOW:
        return _token_logprob(hidden, weight, targets, temperature)
    parts = [checkpoint(_token_logprob, hidden[i:i + CHUNK], weight, targets[i:i + CHUNK], temperature,
                        use_reentrant=False) for i in range(0, hidden.shape[0], CHUNK)]
    return torch.cat(parts)
