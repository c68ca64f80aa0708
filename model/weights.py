"""GPT-2's weights as float32 numpy arrays under Hugging Face's parameter names.

Names follow `GPT2Model`'s state dict without the `transformer.` prefix, e.g. `wte.weight`,
`h.0.attn.c_attn.weight`. Conv1D weights are stored [in, out], as GPT-2 ships them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save_file

from model.config import GPT2Config

Weights = dict[str, np.ndarray]


def block_shapes(config: GPT2Config, i: int) -> dict[str, tuple[int, ...]]:
    """Every parameter of block i with its shape."""
    c = config.n_embd
    return {
        f"h.{i}.ln_1.weight": (c,),
        f"h.{i}.ln_1.bias": (c,),
        f"h.{i}.attn.c_attn.weight": (c, 3 * c),
        f"h.{i}.attn.c_attn.bias": (3 * c,),
        f"h.{i}.attn.c_proj.weight": (c, c),
        f"h.{i}.attn.c_proj.bias": (c,),
        f"h.{i}.ln_2.weight": (c,),
        f"h.{i}.ln_2.bias": (c,),
        f"h.{i}.mlp.c_fc.weight": (c, 4 * c),
        f"h.{i}.mlp.c_fc.bias": (4 * c,),
        f"h.{i}.mlp.c_proj.weight": (4 * c, c),
        f"h.{i}.mlp.c_proj.bias": (c,),
    }


def expected_shapes(config: GPT2Config) -> dict[str, tuple[int, ...]]:
    """The whole model's parameters with their shapes (the output head is tied to wte)."""
    shapes: dict[str, tuple[int, ...]] = {
        "wte.weight": (config.vocab_size, config.n_embd),
        "wpe.weight": (config.n_positions, config.n_embd),
    }
    for i in range(config.n_layer):
        shapes.update(block_shapes(config, i))
    shapes["ln_f.weight"] = (config.n_embd,)
    shapes["ln_f.bias"] = (config.n_embd,)
    return shapes


def check_weights(weights: Weights, config: GPT2Config) -> None:
    """Raise ValueError naming the first missing or misshapen parameter."""
    for name, shape in expected_shapes(config).items():
        if name not in weights:
            raise ValueError(f"weights lack {name!r}")
        if tuple(weights[name].shape) != shape:
            raise ValueError(f"{name} has shape {tuple(weights[name].shape)}, expected {shape}")


def load_safetensors(path: Path, config: GPT2Config) -> Weights:
    """Load a GPT-2 safetensors file (with or without the `transformer.` prefix) as float32."""
    raw = load_file(str(path))
    weights: Weights = {}
    for name, array in raw.items():
        name = name.removeprefix("transformer.")
        if name == "lm_head.weight" or name.endswith(".attn.bias") or name.endswith(".attn.masked_bias"):
            continue  # the head is tied to wte; attn.bias is the causal mask buffer, not a weight
        weights[name] = np.ascontiguousarray(array, dtype=np.float32)
    check_weights(weights, config)
    return weights


def check_safetensors(path: Path, config: GPT2Config) -> None:
    """Check names and shapes from the file's header alone, without reading the weights; ValueError when the
    file is damaged or incomplete (safetensors checks that the header's tensors fill the file exactly)."""
    try:
        handle = safe_open(str(path), framework="numpy")
    except SafetensorError as err:
        raise ValueError(f"{path} is damaged or incomplete ({err})") from err
    with handle as f:
        names = {n.removeprefix("transformer."): n for n in f.keys()}  # noqa: SIM118 (not a dict)
        for name, shape in expected_shapes(config).items():
            if name not in names:
                raise ValueError(f"{path} lacks the tensor {name!r}")
            got = tuple(f.get_slice(names[name]).get_shape())
            if got != shape:
                raise ValueError(f"{path}: {name} has shape {got}, expected {shape} (from config.json)")


def save_safetensors(weights: Weights, path: Path) -> None:
    """Write weights in the layout `load_safetensors` (and transformers) reads."""
    save_file({name: np.ascontiguousarray(a) for name, a in weights.items()}, str(path))


def synthetic_weights(config: GPT2Config, seed: int = 0) -> Weights:
    """Seeded random weights with GPT-2's initialisation scale: untrained, for tests only."""
    rng = np.random.default_rng(seed)
    weights: Weights = {}
    for name, shape in expected_shapes(config).items():
        if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name == "ln_f.weight":
            # LayerNorm gains near 1, so the statistics on the page stay meaningful
            weights[name] = (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        elif name.endswith(".bias"):
            weights[name] = (0.02 * rng.standard_normal(shape)).astype(np.float32)
        else:
            weights[name] = (0.02 * rng.standard_normal(shape)).astype(np.float32)
    return weights


def file_fingerprint(path: Path, config: GPT2Config) -> str:
    """A short hash of the config and a weights file's bytes, read in chunks."""
    h = hashlib.blake2b(digest_size=12)
    h.update(repr(config).encode())
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(weights: Weights, config: GPT2Config) -> str:
    """A short hash of the config and every weight byte: the key of the cached ONNX graph."""
    h = hashlib.blake2b(digest_size=12)
    h.update(repr(config).encode())
    for name in sorted(weights):
        h.update(name.encode())
        h.update(np.ascontiguousarray(weights[name]).tobytes())
    return h.hexdigest()
