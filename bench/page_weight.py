"""Bytes a student's browser fetches for the first view of an 8-token prompt: HTML + CSS + htmx.

GPT-2-small-shaped random weights (12 blocks, 12 heads, 768 wide), so the page has the real model's shapes.
Counts what goes over the wire with gzip (as every browser asks for it) and, for reference, the raw bytes;
also each panel's page, since a student opens them one by one. Budget: 300 000 bytes transferred.
Last line: `page_bytes=<int>` (the first view, transferred).

    python bench/page_weight.py [--model random-gpt2]
"""

from __future__ import annotations

import argparse
import re

from fastapi.testclient import TestClient

from app.loading import Serving
from app.main import create_app
from app.settings import Settings
from model import GPT2, load_model

TEXT = "Data visualization empowers users to see patterns"  # 8 tokens
TEXT2 = "Data+visualization+empowers+people+to+see+patterns"  # one word changed, 8 tokens too
BUDGET = 300_000


def fetch(client: TestClient, url: str) -> tuple[int, int]:
    """(raw bytes, bytes on the wire with gzip) of one GET."""
    with client.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as r:
        r.raise_for_status()
        wire = sum(len(chunk) for chunk in r.iter_raw())
    raw = len(client.get(url, headers={"Accept-Encoding": "identity"}).content)
    return raw, wire


def first_view(client: TestClient, url: str) -> tuple[int, int, list[str]]:
    """The page plus the stylesheet and script it links (what a first visit downloads)."""
    html = client.get(url).text
    assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', html)
    raw, wire = fetch(client, url)
    for asset in assets:
        a_raw, a_wire = fetch(client, asset.replace("&amp;", "&"))
        raw, wire = raw + a_raw, wire + a_wire
    return raw, wire, assets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="random-gpt2")
    args = parser.parse_args()
    gpt2 = GPT2(load_model(args.model))
    n = len(gpt2.tokenize(TEXT))
    assert n == 8, f"the prompt should be 8 tokens, it is {n}"
    app = create_app(Settings(), Serving(gpt2=gpt2, source=gpt2.loaded.description))
    with TestClient(app) as client:
        url = f"/?text={TEXT.replace(' ', '+')}"
        raw, wire, assets = first_view(client, url)
        cfg = gpt2.config
        print(f"model {gpt2.name}: {cfg.n_layer} blocks, {cfg.n_head} heads; prompt {n} tokens")
        print(f"assets: {', '.join(assets)}")
        for view in ("attention", "embedding", "mlp", "residual", "heads"):
            p_raw, p_wire = fetch(client, f"{url}&view={view}")
            print(f"  HTML of the {view:9} view: {p_raw:7d} bytes raw, {p_wire:6d} with gzip")
        # issue 17's views: heads switched off (both runs shown), and two prompts compared with the grid
        for name, extra in (
            ("ablated", "&ablate=1.1,5.3,9.12"),
            ("compare", f"&text2={TEXT2}&view=compare&patch=6.4"),
        ):
            v_raw, v_wire, _ = first_view(client, url + extra)
            print(f"  first view, {name:8}: {v_raw:7d} bytes raw, {v_wire:6d} transferred with gzip")
        print(
            f"first view (HTML + CSS + htmx): {raw} bytes raw, {wire} transferred with gzip; "
            f"budget {BUDGET} ({wire / BUDGET:.2f} of it)"
        )
    print(f"page_bytes={wire}")


if __name__ == "__main__":
    main()
