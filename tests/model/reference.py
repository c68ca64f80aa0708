"""An independent GPT-2 forward pass in numpy (float64), written from the paper's equations, for tests."""

from __future__ import annotations

import numpy as np


def layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return g * (x - mean) / np.sqrt(var + eps) + b


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def forward(w: dict[str, np.ndarray], ids: list[int], n_layer: int, n_head: int) -> dict[str, np.ndarray]:
    """Every named activation for `ids`, computed step by step in float64."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    t = len(ids)
    out: dict[str, np.ndarray] = {}
    out["embed.token"] = w["wte.weight"][ids]
    out["embed.position"] = w["wpe.weight"][:t]
    x = out["embed.sum"] = out["embed.token"] + out["embed.position"]
    c = x.shape[1]
    d = c // n_head
    future = np.triu(np.ones((t, t), bool), k=1)
    for i in range(n_layer):
        p, h = f"block{i}", f"h.{i}"
        a = out[f"{p}.ln1"] = layer_norm(x, w[f"{h}.ln_1.weight"], w[f"{h}.ln_1.bias"])
        qkv = a @ w[f"{h}.attn.c_attn.weight"] + w[f"{h}.attn.c_attn.bias"]
        q, k, v = (m.reshape(t, n_head, d).transpose(1, 0, 2) for m in np.split(qkv, 3, axis=-1))
        out[f"{p}.q"], out[f"{p}.k"], out[f"{p}.v"] = q, k, v
        scores = out[f"{p}.attn.scores"] = q @ k.transpose(0, 2, 1)
        scaled = out[f"{p}.attn.scaled"] = scores / np.sqrt(d)
        masked = out[f"{p}.attn.masked"] = np.where(future, -np.inf, scaled)
        probs = out[f"{p}.attn.probs"] = softmax(masked)
        heads = out[f"{p}.attn.heads"] = probs @ v
        merged = heads.transpose(1, 0, 2).reshape(t, c)
        out[f"{p}.attn.out"] = merged @ w[f"{h}.attn.c_proj.weight"] + w[f"{h}.attn.c_proj.bias"]
        x = out[f"{p}.resid.mid"] = x + out[f"{p}.attn.out"]
        m = out[f"{p}.ln2"] = layer_norm(x, w[f"{h}.ln_2.weight"], w[f"{h}.ln_2.bias"])
        pre = out[f"{p}.mlp.pre"] = m @ w[f"{h}.mlp.c_fc.weight"] + w[f"{h}.mlp.c_fc.bias"]
        act = out[f"{p}.mlp.act"] = gelu_tanh(pre)
        out[f"{p}.mlp.out"] = act @ w[f"{h}.mlp.c_proj.weight"] + w[f"{h}.mlp.c_proj.bias"]
        x = out[f"{p}.resid.out"] = x + out[f"{p}.mlp.out"]
    out["final.ln"] = layer_norm(x, w["ln_f.weight"], w["ln_f.bias"])
    out["logits"] = out["final.ln"][-1:] @ w["wte.weight"].T  # tied head, no bias
    lens_rows = np.stack([out[f"block{i}.resid.out"][-1] for i in range(n_layer)])
    out["lens.logits"] = layer_norm(lens_rows, w["ln_f.weight"], w["ln_f.bias"]) @ w["wte.weight"].T
    return out
