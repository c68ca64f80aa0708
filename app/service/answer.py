"""What the page route sends (app/routes/pages.py), whichever view made it: the explainer
(app/service/page.py) or two prompts side by side (app/service/compare.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

# every request header a page depends on, so a shared cache (deploy/) keeps one copy of each
VARY = "HX-Request, HX-Target, HX-History-Restore-Request, Accept-Language"


@dataclass
class Answer:
    """What the page route sends: a page (or fragment) with its status and headers, or a redirect."""

    html: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    redirect: str | None = None
