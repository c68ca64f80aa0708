"""The serving parts a request needs, made once per process: the FastAPI dependencies hand them to routes.

`Site` is what the page, the exports and the API share: the model being served, the settings, the Jinja
environment, the cache of drawn page parts, the banner and the public address permalinks are written with.
app/main.py makes it when the model is ready; app/deps.py gives it (and pieces of it) to the routes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jinja2

from app.hosts import PublicAddress
from app.loading import Serving, banner_text
from app.pieces import PieceCache
from app.service.intervene import Sweeps
from app.settings import Settings
from model.cache import BytesCache


@dataclass
class Site:
    serving: Serving
    settings: Settings
    templates: jinja2.Environment
    pieces: PieceCache | None  # drawn page parts shared by students on one text and view (None: off)
    exports: BytesCache[Any] | None  # finished downloads, by URL and language (None: off)
    address: PublicAddress  # where permalinks point
    sweeps: Sweeps  # which heads matter, patching grids: kept, and computed a few at a time
    banner: str | None = None

    @classmethod
    def make(cls, serving: Serving, settings: Settings, templates: jinja2.Environment) -> Site:
        pieces = PieceCache(settings.piece_cache_mb * 2**20) if settings.piece_cache_mb else None
        exports = None
        if settings.export_cache_mb:
            budget = settings.export_cache_mb * 2**20
            exports = BytesCache[Any](budget, size=lambda made: len(made.content) + 300, largest=budget // 8)
        return cls(
            serving=serving,
            settings=settings,
            templates=templates,
            pieces=pieces,
            exports=exports,
            address=PublicAddress.from_settings(settings),
            sweeps=Sweeps(settings),
            banner=banner_text(serving),
        )
