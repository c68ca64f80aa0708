"""View-models worked out once per trace and kept with it, bytes counted.

`memo(trace, key, build)` keeps `build()` in the trace's view memo (model/trace.py's `Memo`), per language
and key, so every student who opens the same text shares the drawing. Only for what depends on the numbers,
the key and the language: links carry each student's own controls, so what holds links is drawn with the
sampling controls left as a mark (app/pieces.py). Each kept result is weighed (`deep_size`) and the trace
cache counts it with its trace (model/cache.py), so drawings are inside the trace cache's byte budget. Long
texts are not kept (their pictures are big), and a trace keeps at most MEMO_ENTRIES results, the least
recently used dropped first.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import is_dataclass
from typing import TypeVar

import numpy as np

from app import i18n
from model import Trace

T = TypeVar("T")
SCALARS = {str, int, float, bool}
MEMO_TOKENS = 32  # texts up to this long keep their drawn pictures with their trace
MEMO_ENTRIES = 64  # at most this many pictures per trace (Trace.views), the oldest dropped first


def memo(trace: Trace, key: tuple[object, ...], build: Callable[[], T]) -> T:
    """`build()` once per trace, language and key, then kept with the trace."""
    if trace.n_tokens > MEMO_TOKENS:
        return build()
    return trace.views.get((i18n.current(), *key), build, deep_size)


def deep_size(obj: object) -> int:
    """Bytes held by a view-model: its strings, numbers, lists, tuples, dicts, dataclasses and arrays.
    Containers and objects are counted once each; plain strings and numbers are counted where they appear
    (a string shared by two lists counts twice: the weight errs on the heavy side)."""
    size = sys.getsizeof
    seen: set[int] = set()
    total = 0
    stack = [obj]
    while stack:
        o = stack.pop()
        kind = type(o)
        if kind in SCALARS:
            total += size(o)
            continue
        if o is None or id(o) in seen:
            continue
        seen.add(id(o))
        if kind is np.ndarray:
            total += o.nbytes + 112  # type: ignore[attr-defined]
            continue
        total += size(o)
        if isinstance(o, list | tuple | set | frozenset):
            if set(map(type, o)) <= SCALARS:  # a column of strings or numbers (a heatmap has thousands)
                total += sum(map(size, o))
            else:
                stack.extend(o)
        elif isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif is_dataclass(o) and hasattr(o, "__dict__"):
            stack.extend(vars(o).values())  # its fields, and what its cached properties kept
    return total
