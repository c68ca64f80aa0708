"""GPT-2 in numpy, float64, one line per step: the executable version of docs/architecture.md's tensor table.

Written from the paper's equations and independent of the ONNX graph (model/graph.py), in the manner of
picoGPT: small functions, a shape comment on every line that moves a tensor. `forward` returns every named
activation the Trace holds, under the same names; the parity tests compare the two.
Shapes: T tokens, C = n_embd, H heads, D = C / H, V vocab, L blocks.
"""

from __future__ import annotations

import numpy as np


def layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)  # [T, 1]
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)  # [T, 1]
    return g * (x - mean) / np.sqrt(var + eps) + b  # [T, C]


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """GPT-2's gelu_new: the tanh approximation."""
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))  # same shape as x


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))  # [..., N]; exp(-inf) = 0 for masked entries
    return e / e.sum(axis=-1, keepdims=True)  # [..., N], rows sum to 1


def linear(x: np.ndarray, w: dict[str, np.ndarray], name: str) -> np.ndarray:
    """GPT-2's Conv1D: weights stored [in, out], so x @ W + b with no transpose."""
    return x @ w[f"{name}.weight"] + w[f"{name}.bias"]  # [T, in] -> [T, out]


def attention(
    x: np.ndarray, w: dict[str, np.ndarray], h: str, n_head: int, out: dict[str, np.ndarray], p: str
) -> np.ndarray:
    """Causal self-attention of block `p` (weights under `h`), writing its named steps into `out`."""
    t, c = x.shape  # T, C
    d = c // n_head  # D
    qkv = linear(x, w, f"{h}.attn.c_attn")  # [T, 3C]
    q, k, v = (
        m.reshape(t, n_head, d).transpose(1, 0, 2) for m in np.split(qkv, 3, axis=-1)
    )  # [H, T, D] each
    out[f"{p}.q"], out[f"{p}.k"], out[f"{p}.v"] = q, k, v
    scores = out[f"{p}.attn.scores"] = q @ k.transpose(0, 2, 1)  # [H, T, T]
    scaled = out[f"{p}.attn.scaled"] = scores / np.sqrt(d)  # [H, T, T]
    future = np.triu(np.ones((t, t), bool), k=1)  # [T, T], True above the diagonal
    masked = out[f"{p}.attn.masked"] = np.where(future, -np.inf, scaled)  # [H, T, T]
    probs = out[f"{p}.attn.probs"] = softmax(masked)  # [H, T, T]
    heads = out[f"{p}.attn.heads"] = probs @ v  # [H, T, D]
    merged = heads.transpose(1, 0, 2).reshape(t, c)  # [T, C]: heads side by side
    return linear(merged, w, f"{h}.attn.c_proj")  # [T, C]


def block(
    x: np.ndarray, w: dict[str, np.ndarray], i: int, n_head: int, out: dict[str, np.ndarray]
) -> np.ndarray:
    """One transformer block: x + attention(ln1(x)), then + mlp(ln2(.)); the residual stream [T, C]."""
    p, h = f"block{i}", f"h.{i}"
    a = out[f"{p}.ln1"] = layer_norm(x, w[f"{h}.ln_1.weight"], w[f"{h}.ln_1.bias"])  # [T, C]
    out[f"{p}.attn.out"] = attention(a, w, h, n_head, out, p)  # [T, C]
    x = out[f"{p}.resid.mid"] = x + out[f"{p}.attn.out"]  # [T, C]
    m = out[f"{p}.ln2"] = layer_norm(x, w[f"{h}.ln_2.weight"], w[f"{h}.ln_2.bias"])  # [T, C]
    pre = out[f"{p}.mlp.pre"] = linear(m, w, f"{h}.mlp.c_fc")  # [T, 4C]
    act = out[f"{p}.mlp.act"] = gelu_tanh(pre)  # [T, 4C]
    out[f"{p}.mlp.out"] = linear(act, w, f"{h}.mlp.c_proj")  # [T, C]
    return x + out[f"{p}.mlp.out"]  # [T, C]


def forward(w: dict[str, np.ndarray], ids: list[int], n_layer: int, n_head: int) -> dict[str, np.ndarray]:
    """Every named activation for `ids`, computed step by step in float64 (weights as model/weights.py
    names them: `wte.weight`, `h.0.attn.c_attn.weight`, ...)."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    t = len(ids)  # T
    out: dict[str, np.ndarray] = {}
    out["embed.token"] = w["wte.weight"][ids]  # [T, C]
    out["embed.position"] = w["wpe.weight"][:t]  # [T, C]
    x = out["embed.sum"] = out["embed.token"] + out["embed.position"]  # [T, C]
    for i in range(n_layer):
        x = out[f"block{i}.resid.out"] = block(x, w, i, n_head, out)  # [T, C]
    out["final.ln"] = layer_norm(x, w["ln_f.weight"], w["ln_f.bias"])  # [T, C]
    out["logits"] = out["final.ln"][-1:] @ w["wte.weight"].T  # [1, V]: tied head, no bias
    last = np.stack([out[f"block{i}.resid.out"][-1] for i in range(n_layer)])  # [L, C]
    out["lens.logits"] = layer_norm(last, w["ln_f.weight"], w["ln_f.bias"]) @ w["wte.weight"].T  # [L, V]
    return out
