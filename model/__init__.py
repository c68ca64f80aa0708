"""GPT-2 as an ONNX graph with every activation exposed. No web code lives here."""

from model.config import GPT2Config
from model.gpt2 import GPT2, HeadSweep, PatchSweep
from model.intervention import Intervention, Patch
from model.sampling import Sampling, sample
from model.sources import LoadedModel, ModelUnavailable, load_model
from model.tokenizer import Token, Tokenizer
from model.trace import Trace

__all__ = [
    "GPT2",
    "GPT2Config",
    "HeadSweep",
    "Intervention",
    "LoadedModel",
    "ModelUnavailable",
    "Patch",
    "PatchSweep",
    "Sampling",
    "Token",
    "Tokenizer",
    "Trace",
    "load_model",
    "sample",
]
