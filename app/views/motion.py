"""Figures that play: which frame each drawn part appears in, and the player that runs them.

The stylesheet static/motion.css does the moving (see its header); a view only numbers the parts. A figure
with more parts than MAX_FRAMES shares frames out evenly, so a long text plays in the same time as a short
one. Every part holds the model's real number from the start: a frame reveals it, never changes it.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_FRAMES = 40  # static/motion.css has a rule for each frame 0..MAX_FRAMES (a test keeps them in step)


def frame_of(i: int, n: int, first: int = 0, frames: int = MAX_FRAMES) -> int:
    """The frame of part i of n, counting from `first`, with at most `frames` frames in all."""
    frames = max(1, min(frames, MAX_FRAMES + 1 - first))
    return first + (i if n <= frames else i * frames // n)


def frame_class(i: int, n: int, first: int = 0, kind: str = "") -> str:
    """The classes a part carries: `frame f<N>`, plus the kind of motion (slide, grow, drop) if any."""
    return f"frame f{frame_of(i, n, first)}" + (f" {kind}" if kind else "")


@dataclass(frozen=True)
class Player:
    """The controls of one playing figure: its id (unique on the page), its frames and what it shows."""

    id: str
    frames: int  # frames 0..frames-1
    label: str  # what plays, e.g. "q·kᵀ, row by row"

    @property
    def last(self) -> int:
        return self.frames - 1


def player(id: str, label: str, frames: int) -> Player:
    """A player for a figure of `frames` frames (capped at MAX_FRAMES + 1)."""
    return Player(id=id, frames=max(1, min(frames, MAX_FRAMES + 1)), label=label)
