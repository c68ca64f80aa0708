"""Teaching tests (tour, exports, languages): the app with the tiny synthetic model, as in tests/web."""

from __future__ import annotations

import random
from urllib.parse import parse_qs, urlparse

import pytest

from app.state import REFERENCE_PROMPTS
from tests.web.conftest import app, client, gpt2  # noqa: F401  (the same fixtures as the web tests)


def random_text(seed: int = 7) -> str:
    """A text no one chose: random words, digits, punctuation and a few Chinese characters."""
    rng = random.Random(seed)
    words = ["model", "attention", "tokens", "glass", "blue", "42", "ünïcode", "x", "vis", "the", "a", "of"]
    chinese = ["你好", "世界", "模型", "注意力"]
    parts = [rng.choice(words) for _ in range(rng.randint(6, 10))]
    parts.insert(rng.randrange(len(parts)), rng.choice(chinese))
    return " ".join(parts) + rng.choice([".", "!", ",", " and"])


TEXTS = [*REFERENCE_PROMPTS, random_text()]


@pytest.fixture(params=TEXTS, ids=[t[:20] for t in TEXTS])
def text(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def query_of(url: str) -> dict[str, str]:
    """The query parameters of a link, one value each."""
    return {k: v[0] for k, v in parse_qs(urlparse(url).query, keep_blank_values=True).items()}
