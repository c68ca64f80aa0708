"""Build GPT-2 as an ONNX graph straight from its weights, every activation a named output.

One `make_*` function per box of the architecture. The graph takes the new tokens' ids and
positions, the keys and values of any earlier tokens (empty for a fresh text), which keys each new token
may attend to (`attn_mask`, causal for one text) and which rows get next-token scores (`logit_rows`, the
last one for one text). So the same graph serves a full trace, an incremental one, and several texts packed
into one run (model/runtime.py: their weights are read from memory once). Shapes: N new tokens, P earlier
tokens, R rows with scores, C = n_embd, H heads, D = C/H, V vocab, L layers. There is no batch axis.

Inputs (builder version 3):
    input_ids [N], position_ids [N] int64; attn_mask [N, P+N] bool; logit_rows [R] int64;
    past.{i}.k, past.{i}.v [H, P, D] for each block i;
and the interventions (model/intervention.py), whose defaults leave every output bit-identical to a graph
without them (x·1 and Where(false, ·, x) are exact), so they cost nothing in numbers and ~nothing in time:
    head_mask [L, H, M] float32: block i's head h's attention probabilities are multiplied by
        head_mask[i, h, row] (M = N: one value per new token's row; M = 1: the same for every row). Default 1.
    patch.resid.mask [L+1, N] bool, patch.resid.values [L+1, M, C] float32: where mask[s, row] is set, the
        residual stream at site s is replaced by values[s, row] (M = 1 broadcasts one row). Site 0 is
        `embed.sum`, site i+1 is `block{i}.resid.out`. Default: nothing set.
    patch.heads.mask [L, H, N] bool, patch.heads.values [L, H, M, D] float32: likewise for head h's output in
        block i, `block{i}.attn.heads[h]`, before the heads are concatenated. Default: nothing set.
The named outputs show the intervened values: `block{i}.attn.probs` is after the head mask (a head switched
off has rows of zeros, as transformers returned its attentions), `embed.sum`, `block{i}.resid.out` and
`block{i}.attn.heads` after any patch (a patched row no longer equals the sum or product it came from).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from model.config import GPT2Config
from model.weights import Weights

BUILDER_VERSION = "3"
OPSET = 20


# what every block exposes, in the order of docs/architecture.md's tensor table
BLOCK_TENSORS = (
    *("ln1", "q", "k", "v"),
    *("attn.scores", "attn.scaled", "attn.masked", "attn.probs", "attn.heads", "attn.out", "resid.mid"),
    *("ln2", "mlp.pre", "mlp.act", "mlp.out", "resid.out"),
)


def block_output_names(i: int) -> list[str]:
    """The activations block i exposes, in the order of docs/architecture.md's tensor table."""
    return [f"block{i}.{name}" for name in BLOCK_TENSORS]


def output_names(config: GPT2Config) -> list[str]:
    """Every graph output: the tensor table of docs/architecture.md plus the logit lens."""
    names = ["embed.token", "embed.position", "embed.sum"]
    for i in range(config.n_layer):
        names += block_output_names(i)
    return [*names, "final.ln", "logits", "lens.logits"]


class GraphBuilder:
    """Collects nodes and initializers; each `make_*` method adds one sub-graph and returns its output."""

    def __init__(self, weights: Weights, config: GPT2Config, interventions: bool = True) -> None:
        self.w = weights
        self.config = config
        # False: the graph of builder version 2, without the intervention inputs (tests compare the two)
        self.interventions = interventions
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

    def before_patch(self, name: str) -> str:
        """The name of a patchable tensor before its patch (the tensor itself when there are no patches)."""
        return f"{name}/unpatched" if self.interventions else name

    def make_patch(self, x: str, which: str, site: int, out: str) -> str:
        """Where patch.{which}.mask[site] is set, take patch.{which}.values[site] instead of x.

        mask [(H,) N] ─Unsqueeze─> [(H,) N, 1] ─┐
        values [(H,) M, C or D] ────────────────Where(mask, values, x)─> out, shaped as x
        """
        if not self.interventions:
            return x
        i = self.const(f"index/{site}", np.array(site, np.int64))
        last = self.const("axes/-1", np.array([-1], np.int64))
        mask = self.node("Gather", [f"patch.{which}.mask", i], f"{out}/patch.mask", axis=0)
        mask = self.node("Unsqueeze", [mask, last], f"{out}/patch.mask/col")
        values = self.node("Gather", [f"patch.{which}.values", i], f"{out}/patch.values", axis=0)
        return self.node("Where", [mask, values, x], out)

    def make_head_mask(self, probs: str, i: int, out: str) -> str:
        """softmax [H, N, P+N] · head_mask[i] [H, M] ─Unsqueeze─> [H, M, 1] ─Mul─> out [H, N, P+N]"""
        if not self.interventions:
            return probs
        index = self.const(f"index/{i}", np.array(i, np.int64))
        last = self.const("axes/-1", np.array([-1], np.int64))
        mask = self.node("Gather", ["head_mask", index], f"{out}/head_mask", axis=0)
        mask = self.node("Unsqueeze", [mask, last], f"{out}/head_mask/col")
        return self.node("Mul", [probs, mask], out)

    # -- sub-graphs ----------------------------------------------------------------------------------
    def make_embedding(self) -> str:
        """ids, positions -> wte[ids] + wpe[positions]

        input_ids [N] ─Gather(wte)─> embed.token [N, C] ─┐
        position_ids [N] ─Gather(wpe)─> embed.position ──Add─> embed.sum [N, C]
        """
        tok = self.node("Gather", [self.param("wte.weight"), "input_ids"], "embed.token")
        pos = self.node("Gather", [self.param("wpe.weight"), "position_ids"], "embed.position")
        total = self.node("Add", [tok, pos], self.before_patch("embed.sum"))
        return self.make_patch(total, "resid", 0, "embed.sum")  # patch site 0

    def make_layer_norm(self, x: str, prefix: str, out: str) -> str:
        """[N, C] -> [N, C], normalised over C with gain and bias."""
        gamma, beta = self.param(f"{prefix}.weight"), self.param(f"{prefix}.bias")
        eps = self.config.layer_norm_epsilon
        return self.node("LayerNormalization", [x, gamma, beta], out, axis=-1, epsilon=eps)

    def make_linear(self, x: str, prefix: str, out: str) -> str:
        """GPT-2's Conv1D: x @ W + b with W stored [in, out] (MatMul, not Gemm, so it can be quantised)."""
        y = self.node("MatMul", [x, self.param(f"{prefix}.weight")], f"{out}/matmul")
        return self.node("Add", [y, self.param(f"{prefix}.bias")], out)

    def split_heads(self, x: str, out: str) -> str:
        """[N, C] -> [N, H, D] -> [H, N, D]"""
        c = self.config
        shape = self.const("shape/NHD", np.array([-1, c.n_head, c.head_dim], np.int64))
        return self.node("Transpose", [self.node("Reshape", [x, shape], f"{out}/nhd")], out, perm=[1, 0, 2])

    def make_attention(self, x: str, i: int, allowed: str) -> str:
        """Causal multi-head self-attention of block i: ln1 [N, C] -> attn.out [N, C]

        ln1 ─c_attn─> [N, 3C] ─Split─> q, k_new, v_new ─> [H, N, D] each
        k = Concat(past k, k_new) [H, P+N, D]; v likewise
        scores = q · kᵀ [H, N, P+N] ─÷√D─> scaled ─Where(allowed, ·, -inf)─> masked ─Softmax─>
            ─·head_mask─> probs
        heads = probs · v [H, N, D] ─patch─> heads ─Transpose, Reshape─> [N, C] ─c_proj─> attn.out
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
        softmax = f"{p}.attn.softmax" if self.interventions else f"{p}.attn.probs"
        probs = self.make_head_mask(self.node("Softmax", [masked], softmax, axis=-1), i, f"{p}.attn.probs")
        heads = self.node("MatMul", [probs, v], self.before_patch(f"{p}.attn.heads"))  # [H, N, D]
        heads = self.make_patch(heads, "heads", i, f"{p}.attn.heads")
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
        out = self.node("Add", [mid, self.make_mlp(ln2, i)], self.before_patch(f"{p}.resid.out"))
        return self.make_patch(out, "resid", i + 1, f"{p}.resid.out")  # patch site i + 1

    def make_head(self, x: str, block_outputs: list[str]) -> None:
        """final.ln, then the tied head applied after every block at the rows `logit_rows` (the logit lens).

        resid.out of each block [N, C] ─Gather(logit_rows)─> [R, C] ─Concat─> [L·R, C] (block by block)
            ─ln_f─> ─Gemm(wteᵀ)─> lens.logits [L·R, V]
        the last block's rows are the model's predictions: logits [R, V] (GPT-2's head has no bias).
        For one text R = 1: lens.logits [L, V], logits [1, V].
        """
        self.make_layer_norm(x, "ln_f", "final.ln")
        rows = [self.node("Gather", [r, "logit_rows"], f"{r}/rows", axis=0) for r in block_outputs]
        stacked = self.node("Concat", rows, "lens.resid", axis=0)
        normed = self.make_layer_norm(stacked, "ln_f", "lens.ln")
        lens = self.node("Gemm", [normed, self.param("wte.weight")], "lens.logits", transB=1)
        r = self.node("Shape", ["logit_rows"], "logits/R")
        start = self.node("Neg", [r], "logits/start")
        end = self.const("logits/end", np.array([np.iinfo(np.int64).max], np.int64))
        axis = self.const("axes/0", np.array([0], np.int64))
        self.node("Slice", [lens, start, end, axis], "logits")

    def build(self) -> onnx.ModelProto:
        c = self.config
        x = self.make_embedding()
        block_outputs = []
        for i in range(c.n_layer):
            x = self.make_block(x, i, "attn_mask")
            block_outputs.append(x)
        self.make_head(x, block_outputs)

        f32, i64 = TensorProto.FLOAT, TensorProto.INT64
        inputs = [
            helper.make_tensor_value_info("input_ids", i64, ["N"]),
            helper.make_tensor_value_info("position_ids", i64, ["N"]),
            # allowed[n, j]: new token n may attend to key j (the P earlier keys, then the N new ones)
            helper.make_tensor_value_info("attn_mask", TensorProto.BOOL, ["N", "PN"]),
            helper.make_tensor_value_info("logit_rows", i64, ["R"]),
        ]
        for i in range(c.n_layer):
            for kv in ("k", "v"):
                inputs.append(
                    helper.make_tensor_value_info(f"past.{i}.{kv}", f32, [c.n_head, "P", c.head_dim])
                )
        if self.interventions:  # see the module docstring; M is N or 1
            L, H, C, D = c.n_layer, c.n_head, c.n_embd, c.head_dim
            inputs += [
                helper.make_tensor_value_info("head_mask", f32, [L, H, "Mh"]),
                helper.make_tensor_value_info("patch.resid.mask", TensorProto.BOOL, [L + 1, "N"]),
                helper.make_tensor_value_info("patch.resid.values", f32, [L + 1, "Mr", C]),
                helper.make_tensor_value_info("patch.heads.mask", TensorProto.BOOL, [L, H, "N"]),
                helper.make_tensor_value_info("patch.heads.values", f32, [L, H, "Mp", D]),
            ]
        outputs = [helper.make_tensor_value_info(name, f32, None) for name in output_names(c)]
        graph = helper.make_graph(self.nodes, "gpt2_trace", inputs, outputs, list(self.initializers.values()))
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="glassbox"
        )
        model.ir_version = 10
        return model


def build_graph(weights: Weights, config: GPT2Config, interventions: bool = True) -> onnx.ModelProto:
    """GPT-2 as one ONNX model whose outputs are every named activation (see the module docstring)."""
    return GraphBuilder(weights, config, interventions).build()
