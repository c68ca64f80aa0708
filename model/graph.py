"""Build GPT-2 as an ONNX graph straight from its weights, every activation a named output.

One `make_*` function per box of the architecture. The graph takes the new tokens' ids and
positions plus the keys and values of any earlier tokens (empty for a fresh text), so the same graph
serves a full trace and an incremental one. Shapes: N new tokens, P earlier tokens, C = n_embd,
H heads, D = C/H, V vocab, L layers. Batch is always 1 and is dropped.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from model.config import GPT2Config
from model.weights import Weights

BUILDER_VERSION = "1"
OPSET = 20


def block_output_names(i: int) -> list[str]:
    """The activations block i exposes, in the order of DESIGN.md's table."""
    p = f"block{i}"
    return [
        f"{p}.ln1", f"{p}.q", f"{p}.k", f"{p}.v",
        f"{p}.attn.scores", f"{p}.attn.scaled", f"{p}.attn.masked", f"{p}.attn.probs",
        f"{p}.attn.heads", f"{p}.attn.out", f"{p}.resid.mid",
        f"{p}.ln2", f"{p}.mlp.pre", f"{p}.mlp.act", f"{p}.mlp.out", f"{p}.resid.out",
    ]  # fmt: skip


def output_names(config: GPT2Config) -> list[str]:
    """Every graph output: the tensor table of DESIGN.md plus the logit lens."""
    names = ["embed.token", "embed.position", "embed.sum"]
    for i in range(config.n_layer):
        names += block_output_names(i)
    return [*names, "final.ln", "logits", "lens.logits"]


class GraphBuilder:
    """Collects nodes and initializers; each `make_*` method adds one sub-graph and returns its output."""

    def __init__(self, weights: Weights, config: GPT2Config) -> None:
        self.w = weights
        self.config = config
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: dict[str, onnx.TensorProto] = {}

    # -- helpers -------------------------------------------------------------------------------------
    def node(self, op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=f"{op}:{output}", **attrs))
        return output

    def param(self, name: str) -> str:
        """A weight as an initializer, added once however often it is used."""
        if name not in self.initializers:
            self.initializers[name] = numpy_helper.from_array(self.w[name], name)
        return name

    def const(self, name: str, value: np.ndarray) -> str:
        if name not in self.initializers:
            self.initializers[name] = numpy_helper.from_array(value, name)
        return name

    # -- sub-graphs ----------------------------------------------------------------------------------
    def make_embedding(self) -> str:
        """ids, positions -> wte[ids] + wpe[positions]

        input_ids [N] ─Gather(wte)─> embed.token [N, C] ─┐
        position_ids [N] ─Gather(wpe)─> embed.position ──Add─> embed.sum [N, C]
        """
        tok = self.node("Gather", [self.param("wte.weight"), "input_ids"], "embed.token")
        pos = self.node("Gather", [self.param("wpe.weight"), "position_ids"], "embed.position")
        return self.node("Add", [tok, pos], "embed.sum")

    def make_layer_norm(self, x: str, prefix: str, out: str) -> str:
        """[N, C] -> [N, C], normalised over C with gain and bias."""
        eps = self.config.layer_norm_epsilon
        return self.node(
            "LayerNormalization",
            [x, self.param(f"{prefix}.weight"), self.param(f"{prefix}.bias")],
            out, axis=-1, epsilon=eps,
        )  # fmt: skip

    def make_linear(self, x: str, prefix: str, out: str) -> str:
        """GPT-2's Conv1D: x @ W + b with W stored [in, out] (MatMul, not Gemm, so it can be quantised)."""
        y = self.node("MatMul", [x, self.param(f"{prefix}.weight")], f"{out}/matmul")
        return self.node("Add", [y, self.param(f"{prefix}.bias")], out)

    def make_causal_mask(self) -> str:
        """allowed[n, j] = key position j <= query position n  ->  [N, P+N] bool

        Shape(past.0.k)[1] = P ─┐
        Shape(input_ids)    = N ─Add─> P+N ─Range─> key positions [P+N] ─┐
        position_ids [N, 1] ───────────────────────────────────────LessOrEqual─> allowed
        """
        p = self.node("Shape", ["past.0.k"], "mask/P", start=1, end=2)
        n = self.node("Shape", ["input_ids"], "mask/N")
        total = self.node("Squeeze", [self.node("Add", [p, n], "mask/total1")], "mask/total")
        zero, one = (
            self.const("mask/zero", np.array(0, np.int64)),
            self.const("mask/one", np.array(1, np.int64)),
        )
        keys = self.node("Range", [zero, total, one], "mask/keys")
        queries = self.node(
            "Unsqueeze", ["position_ids", self.const("axes/1", np.array([1], np.int64))], "mask/q"
        )
        return self.node("LessOrEqual", [keys, queries], "mask/allowed")

    def split_heads(self, x: str, out: str) -> str:
        """[N, C] -> [N, H, D] -> [H, N, D]"""
        c = self.config
        shape = self.const("shape/NHD", np.array([-1, c.n_head, c.head_dim], np.int64))
        return self.node("Transpose", [self.node("Reshape", [x, shape], f"{out}/nhd")], out, perm=[1, 0, 2])

    def make_attention(self, x: str, i: int, allowed: str) -> str:
        """Causal multi-head self-attention of block i: ln1 [N, C] -> attn.out [N, C]

        ln1 ─c_attn─> [N, 3C] ─Split─> q, k_new, v_new ─> [H, N, D] each
        k = Concat(past k, k_new) [H, P+N, D]; v likewise
        scores = q · kᵀ [H, N, P+N] ─÷√D─> scaled ─Where(allowed, ·, -inf)─> masked ─Softmax─> probs
        heads = probs · v [H, N, D] ─Transpose, Reshape─> [N, C] ─c_proj─> attn.out
        """
        p, c = f"block{i}", self.config
        qkv = self.make_linear(x, f"h.{i}.attn.c_attn", f"{p}.qkv")
        split = self.const("split/3C", np.array([c.n_embd] * 3, np.int64))
        names = [f"{p}.q/flat", f"{p}.k/new/flat", f"{p}.v/new/flat"]
        self.nodes.append(helper.make_node("Split", [qkv, split], names, name=f"Split:{p}", axis=-1))
        q = self.split_heads(names[0], f"{p}.q")
        k_new = self.split_heads(names[1], f"{p}.k/new")
        v_new = self.split_heads(names[2], f"{p}.v/new")
        k = self.node("Concat", [f"past.{i}.k", k_new], f"{p}.k", axis=1)
        v = self.node("Concat", [f"past.{i}.v", v_new], f"{p}.v", axis=1)
        k_t = self.node("Transpose", [k], f"{p}.k/T", perm=[0, 2, 1])  # [H, D, P+N]
        scores = self.node("MatMul", [q, k_t], f"{p}.attn.scores")
        sqrt_d = self.const("sqrt_d", np.array(math.sqrt(c.head_dim), np.float32))
        scaled = self.node("Div", [scores, sqrt_d], f"{p}.attn.scaled")
        neg_inf = self.const("neg_inf", np.array(-np.inf, np.float32))
        masked = self.node("Where", [allowed, scaled, neg_inf], f"{p}.attn.masked")
        probs = self.node("Softmax", [masked], f"{p}.attn.probs", axis=-1)
        heads = self.node("MatMul", [probs, v], f"{p}.attn.heads")
        merged = self.node("Transpose", [heads], f"{p}.attn.merged/nhd", perm=[1, 0, 2])
        shape = self.const("shape/NC", np.array([-1, c.n_embd], np.int64))
        merged = self.node("Reshape", [merged, shape], f"{p}.attn.merged")
        return self.make_linear(merged, f"h.{i}.attn.c_proj", f"{p}.attn.out")

    def make_mlp(self, x: str, i: int) -> str:
        """ln2 [N, C] ─c_fc─> mlp.pre [N, 4C] ─GELU(tanh)─> mlp.act ─c_proj─> mlp.out [N, C]"""
        p = f"block{i}"
        pre = self.make_linear(x, f"h.{i}.mlp.c_fc", f"{p}.mlp.pre")
        act = self.node("Gelu", [pre], f"{p}.mlp.act", approximate="tanh")  # GPT-2's gelu_new
        return self.make_linear(act, f"h.{i}.mlp.c_proj", f"{p}.mlp.out")

    def make_block(self, x: str, i: int, allowed: str) -> str:
        """x ─ln1─attention─(+x)─> resid.mid ─ln2─mlp─(+resid.mid)─> resid.out (pre-LN residual block)"""
        p = f"block{i}"
        ln1 = self.make_layer_norm(x, f"h.{i}.ln_1", f"{p}.ln1")
        mid = self.node("Add", [x, self.make_attention(ln1, i, allowed)], f"{p}.resid.mid")
        ln2 = self.make_layer_norm(mid, f"h.{i}.ln_2", f"{p}.ln2")
        return self.node("Add", [mid, self.make_mlp(ln2, i)], f"{p}.resid.out")

    def make_head(self, x: str, block_outputs: list[str]) -> None:
        """final.ln, then the tied head applied at the last position after every block (the logit lens).

        resid.out of each block [N, C] ─Gather(last)─> [1, C] ─Concat─> [L, C]
            ─ln_f─> ─Gemm(wteᵀ)─> lens.logits [L, V]
        the last block's row is the model's prediction: logits [1, V] (GPT-2's head has no bias)
        """
        self.make_layer_norm(x, "ln_f", "final.ln")
        last = self.const("index/last", np.array([-1], np.int64))
        rows = [self.node("Gather", [r, last], f"{r}/last", axis=0) for r in block_outputs]
        stacked = self.node("Concat", rows, "lens.resid", axis=0)
        normed = self.make_layer_norm(stacked, "ln_f", "lens.ln")
        lens = self.node("Gemm", [normed, self.param("wte.weight")], "lens.logits", transB=1)
        self.node("Gather", [lens, last], "logits", axis=0)

    def build(self) -> onnx.ModelProto:
        c = self.config
        x = self.make_embedding()
        allowed = self.make_causal_mask()
        block_outputs = []
        for i in range(c.n_layer):
            x = self.make_block(x, i, allowed)
            block_outputs.append(x)
        self.make_head(x, block_outputs)

        f32, i64 = TensorProto.FLOAT, TensorProto.INT64
        inputs = [helper.make_tensor_value_info("input_ids", i64, ["N"]),
                  helper.make_tensor_value_info("position_ids", i64, ["N"])]  # fmt: skip
        for i in range(c.n_layer):
            for kv in ("k", "v"):
                inputs.append(
                    helper.make_tensor_value_info(f"past.{i}.{kv}", f32, [c.n_head, "P", c.head_dim])
                )
        outputs = [helper.make_tensor_value_info(name, f32, None) for name in output_names(c)]
        graph = helper.make_graph(self.nodes, "gpt2_trace", inputs, outputs, list(self.initializers.values()))
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="glassbox"
        )
        model.ir_version = 10
        return model


def build_graph(weights: Weights, config: GPT2Config) -> onnx.ModelProto:
    """GPT-2 as one ONNX model whose outputs are every named activation."""
    return GraphBuilder(weights, config).build()
