"""Every named activation from transformers' PyTorch GPT-2 (eager attention), collected with hooks.

For the parity tests and bench/trace_vs_torch.py only: it needs torch and transformers, which only the
`test` extra installs (`pip install -e '.[test]'`); nothing the server runs imports it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from model.config import GPT2Config
from model.weights import Weights


def hf_model(weights: Weights, config: GPT2Config):
    """transformers' GPT2LMHeadModel holding exactly these weights (head tied to wte)."""
    import torch
    from transformers import GPT2Config as HFConfig
    from transformers import GPT2LMHeadModel

    options: dict[str, Any] = {**config.to_hf_dict(), "attn_implementation": "eager"}
    hf = GPT2LMHeadModel(HFConfig(**options))
    state = {f"transformer.{k}": torch.from_numpy(v) for k, v in weights.items()}
    missing, unexpected = hf.load_state_dict(state, strict=False)
    assert not unexpected, unexpected
    assert all(m == "lm_head.weight" or m.endswith(".attn.bias") for m in missing), missing
    hf.tie_weights()
    assert hf.lm_head.weight.data_ptr() == hf.transformer.wte.weight.data_ptr()
    return hf.eval()


def torch_trace(hf, ids: list[int], config: GPT2Config) -> dict[str, np.ndarray]:
    """Run transformers' GPT-2 and gather docs/architecture.md's tensors from hooks and outputs."""
    import torch

    got: dict[str, torch.Tensor] = {}
    handles = []

    def keep(name: str, pre: bool = False):
        def hook(module, args, output=None):
            got[name] = (args[0] if pre else output)[0].detach()

        return hook

    tr = hf.transformer
    handles.append(tr.wte.register_forward_hook(keep("embed.token")))
    handles.append(tr.wpe.register_forward_hook(keep("embed.position")))
    for i, block in enumerate(tr.h):
        p = f"block{i}"
        handles += [
            block.ln_1.register_forward_hook(keep(f"{p}.ln1")),
            block.attn.c_attn.register_forward_hook(keep(f"{p}.qkv")),
            block.attn.c_proj.register_forward_pre_hook(keep(f"{p}.merged", pre=True)),
            block.attn.c_proj.register_forward_hook(keep(f"{p}.attn.out")),
            block.ln_2.register_forward_pre_hook(keep(f"{p}.resid.mid", pre=True)),
            block.ln_2.register_forward_hook(keep(f"{p}.ln2")),
            block.mlp.c_fc.register_forward_hook(keep(f"{p}.mlp.pre")),
            block.mlp.act.register_forward_hook(keep(f"{p}.mlp.act")),
            block.mlp.c_proj.register_forward_hook(keep(f"{p}.mlp.out")),
        ]
    handles.append(tr.ln_f.register_forward_pre_hook(keep("last.resid", pre=True)))
    handles.append(tr.ln_f.register_forward_hook(keep("final.ln")))
    with torch.no_grad():
        out = hf(torch.tensor([ids]), output_attentions=True, output_hidden_states=True)
        for h in handles:
            h.remove()
        t, n_head, d = len(ids), config.n_head, config.head_dim
        res: dict[str, torch.Tensor] = {k: v for k, v in got.items() if not k.endswith((".qkv", ".merged"))}
        res["embed.sum"] = out.hidden_states[0][0]
        future = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
        for i in range(config.n_layer):
            p = f"block{i}"
            q, k, v = (
                m.reshape(t, n_head, d).transpose(0, 1) for m in got[f"{p}.qkv"].split(config.n_embd, -1)
            )
            res[f"{p}.q"], res[f"{p}.k"], res[f"{p}.v"] = q, k, v
            res[f"{p}.attn.scores"] = q @ k.transpose(-1, -2)
            res[f"{p}.attn.scaled"] = res[f"{p}.attn.scores"] / math.sqrt(d)
            res[f"{p}.attn.masked"] = res[f"{p}.attn.scaled"].masked_fill(future, -math.inf)
            res[f"{p}.attn.probs"] = out.attentions[i][0]
            res[f"{p}.attn.heads"] = got[f"{p}.merged"].reshape(t, n_head, d).transpose(0, 1)
            # hidden_states[i + 1] is block i's output, except the last, which transformers returns after ln_f
            res[f"{p}.resid.out"] = (
                out.hidden_states[i + 1][0] if i < config.n_layer - 1 else got["last.resid"]
            )
        res["logits"] = out.logits[0, -1:]
        # logit lens: each block's output at the last position through transformers' own ln_f and head
        last = torch.stack([res[f"block{i}.resid.out"][-1] for i in range(config.n_layer)])
        res["lens.logits"] = hf.lm_head(tr.ln_f(last))
    return {k: v.float().numpy() for k, v in res.items() if k != "last.resid"}
