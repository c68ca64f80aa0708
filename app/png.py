"""SVG -> PNG on the server with cairosvg (which needs the system's cairo library, Debian's libcairo2).

cairosvg draws text with the first font family it is given, so the PNG gets concrete, installed families in
place of the page's font stacks: Noto Sans CJK when the figure has Chinese (or other wide) characters and the
font is installed (Debian's fonts-noto-cjk), else DejaVu.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache

# The font stacks of static/figures.css, replaced in a PNG's copy of it (a test keeps them in step).
SANS = 'system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif'
MONO = 'ui-monospace, "SF Mono", "Cascadia Mono", "DejaVu Sans Mono", Menlo, Consolas, monospace'
MAX_SIDE = 4096  # pixels: a 256-token heatmap is drawn smaller rather than as a 100 MB raster
# ... and at most this many pixels in all (16 MB of RGBA): a 256-token attention map renders at 2048 x 2048
# rather than 4096 x 4096, in a quarter of the memory and CPU
MAX_PIXELS = 2048 * 2048
TITLES = re.compile(r"<title>[^<]*</title>")  # escaped text: it holds no "<"
WIDE = re.compile("[\u1100-\u11ff\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]")


class PngUnavailable(RuntimeError):
    """cairosvg or the cairo library is not installed."""


@cache
def installed_families() -> frozenset[str]:
    """Font families fontconfig knows (empty when fc-list is missing)."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return frozenset()
    try:
        out = subprocess.run(
            [fc_list, ":", "family"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(name.strip() for line in out.stdout.splitlines() for name in line.split(","))


def fonts_for(wide: bool) -> tuple[str, str]:
    """(sans, mono) families to draw with."""
    have = installed_families()
    if wide and "Noto Sans CJK SC" in have:
        return (
            "Noto Sans CJK SC",
            "Noto Sans Mono CJK SC" if "Noto Sans Mono CJK SC" in have else "Noto Sans CJK SC",
        )
    return "DejaVu Sans", "DejaVu Sans Mono"


def png_css(css: str, wide: bool) -> str:
    """The figure stylesheet with concrete font families in place of the stacks."""
    sans, mono = fonts_for(wide)
    return css.replace(SANS, f'"{sans}"').replace(MONO, f'"{mono}"')


def needs_wide_font(*texts: str) -> bool:
    return any(WIDE.search(t) for t in texts)


def png_scale(width: float, height: float, scale: float = 2.0) -> float:
    """Twice the figure's size (sharp on slides), less when that would pass MAX_SIDE pixels."""
    return min(scale, MAX_SIDE / max(width, height, 1.0))


def export_scale(width: float, height: float) -> float:
    """The scale an export is rendered at: `png_scale`, less when that would pass MAX_PIXELS."""
    return min(png_scale(width, height), (MAX_PIXELS / max(width * height, 1.0)) ** 0.5)


def render_png(svg: str, scale: float = 2.0) -> bytes:
    """Rasterise a standalone SVG document at `scale` times its size."""
    svg = TITLES.sub("", svg)  # hover texts are invisible in a picture, and a third of cairosvg's work
    try:
        import cairosvg
    except (ImportError, OSError) as err:  # OSError: the cairo library itself is missing
        raise PngUnavailable(str(err)) from err
    png = cairosvg.svg2png(bytestring=svg.encode("utf-8"), scale=scale, unsafe=False)
    assert isinstance(png, bytes)
    return png
