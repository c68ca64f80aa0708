"""How many files a page links (stylesheets, htmx): each student of bench/classroom.py fetches each once."""

from __future__ import annotations

import re
from functools import cache

from fastapi.testclient import TestClient

from app.loading import Serving
from app.main import create_app
from app.settings import Settings
from model import GPT2, load_model


@cache
def linked_files() -> int:
    """The /static/ files the front page links, found as bench/classroom.py finds them."""
    tiny = load_model("tiny")
    app = create_app(Settings(), Serving(gpt2=GPT2(tiny), source=tiny.description))
    with TestClient(app) as client:
        page = client.get("/", params={"text": "Data visualization empowers users to"}).text
    return len(re.findall(r'(?:href|src)="(/static/[^"]+)"', page))
