"""GPT-2's hyper-parameters, read from a Hugging Face config.json or made up for a synthetic model."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Bounds past any GPT-2 (XL: 48 layers, 25 heads, 1600 wide, 1024 positions, 50257 tokens): a config.json
# outside them is damaged, not a bigger model.
LIMITS = {"n_layer": 256, "n_head": 256, "n_embd": 16384, "n_positions": 65536, "vocab_size": 1 << 20}


@dataclass(frozen=True)
class GPT2Config:
    """The numbers that fix GPT-2's shapes. Defaults are GPT-2 small (124M)."""

    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    n_positions: int = 1024
    vocab_size: int = 50257
    layer_norm_epsilon: float = 1e-5

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @classmethod
    def from_json(cls, path: Path) -> GPT2Config:
        """Read the fields we need from a Hugging Face GPT-2 config.json."""
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except UnicodeDecodeError as err:
            raise ValueError(f"{path} is not text ({err.reason})") from err
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON ({err.msg} at line {err.lineno})") from err
        if not isinstance(raw, dict):
            raise ValueError(f"{path} is not a JSON object")
        model_type = raw.get("model_type", "gpt2")
        if model_type != "gpt2":
            raise ValueError(f"{path} describes a {model_type!r} model; only GPT-2 models are supported")
        act = raw.get("activation_function", "gelu_new")
        if act not in ("gelu_new", "gelu_pytorch_tanh"):
            raise ValueError(f"{path}: activation {act!r} is not GPT-2's tanh GELU")
        sizes: dict[str, Any] = {"n_positions": raw.get("n_positions", raw.get("n_ctx", 1024))}
        for name in ("n_layer", "n_head", "n_embd", "vocab_size"):
            if name not in raw:
                raise ValueError(f"{path} has no {name}")
            sizes[name] = raw[name]
        for name, value in sizes.items():
            if type(value) is not int or not 1 <= value <= LIMITS[name]:
                raise ValueError(
                    f"{path}: {name} is {value!r:.40}; a GPT-2 has a whole number from 1 to {LIMITS[name]}"
                )
        eps = raw.get("layer_norm_epsilon", 1e-5)
        if type(eps) not in (int, float) or not 0 < eps < 1:
            raise ValueError(f"{path}: layer_norm_epsilon is {eps!r:.40}; GPT-2's is 1e-05")
        config = cls(**sizes, layer_norm_epsilon=float(eps))
        if config.n_embd % config.n_head:
            raise ValueError(f"{path}: n_embd {config.n_embd} is not divisible by n_head {config.n_head}")
        return config

    def to_hf_dict(self) -> dict[str, object]:
        """A config.json that transformers' GPT2Config accepts."""
        return {
            "model_type": "gpt2",
            "architectures": ["GPT2LMHeadModel"],
            "activation_function": "gelu_new",
            **asdict(self),
            "n_ctx": self.n_positions,
            "bos_token_id": 50256,
            "eos_token_id": 50256,
        }
