"""GPT-2's hyper-parameters, read from a Hugging Face config.json or made up for a synthetic model."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path


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
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        model_type = raw.get("model_type", "gpt2")
        if model_type != "gpt2":
            raise ValueError(f"{path} describes a {model_type!r} model; only GPT-2 models are supported")
        act = raw.get("activation_function", "gelu_new")
        if act not in ("gelu_new", "gelu_pytorch_tanh"):
            raise ValueError(f"{path}: activation {act!r} is not GPT-2's tanh GELU")
        config = cls(
            n_layer=int(raw["n_layer"]),
            n_head=int(raw["n_head"]),
            n_embd=int(raw["n_embd"]),
            n_positions=int(raw.get("n_positions", raw.get("n_ctx", 1024))),
            vocab_size=int(raw["vocab_size"]),
            layer_norm_epsilon=float(raw.get("layer_norm_epsilon", 1e-5)),
        )
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
