"""A client's own batch still being received (draft/multiline, core/multiline.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .envelope import Part


@dataclass
class OpenBatch:
    """A multiline message still being received."""

    target: str
    tags: dict[str, str]
    command: str = ""
    lines: list[Part] = field(default_factory=list)
    size: int = 0
    failed: bool = False
