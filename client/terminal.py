"""Where the client's lines appear: coloured above a prompt_toolkit input line, or plain.

TerminalView prints from the receiver thread into prompt_toolkit's patched stdout
(patch_stdout(raw=True)), which draws each line above the line being typed and
redraws that line intact. Colours are turned into escape sequences here with
prompt_toolkit's own renderer, at the colour depth the terminal supports.
PlainView writes bare lines for pipes and scripts: no colour codes, flushed at once.
"""

from __future__ import annotations

import io
import sys
import threading
from typing import TextIO

from prompt_toolkit.data_structures import Size
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.output import ColorDepth, create_output
from prompt_toolkit.output.vt100 import Vt100_Output
from prompt_toolkit.renderer import print_formatted_text
from prompt_toolkit.styles import Style

from backend.irc.describe import Kind, Line, nick_colour, safe, split_mentions, visible

STYLE = Style.from_dict(
    {
        "time": "#8a8a8a",
        "room": "#8a8a8a",
        "event": "#8a8a8a",
        "info": "#8a8a8a",
        "error": "#e6194b bold",
        "own": "#b0b0b0 italic",
        "mention": "reverse bold",
        "mentioned": "bold",
        "prompt": "bold",
        # History replayed on joining: dim, so old lines never pass for live ones.
        "history": "#6c6c6c",
        "mark": "#6c6c6c",
    }
)

_QUIET_KINDS = frozenset({Kind.JOIN, Kind.LEAVE, Kind.EVENT})


def fragments(line: Line, room: str | None, me: str) -> StyleAndTextTuples:
    """A Line as prompt_toolkit (style, text) pieces: nick in its colour, own lines and mentions marked.

    History lines are dimmed as a whole (the nick keeps its colour, dimmed too), and a
    MARK ("── earlier in #lobby ──") is one dim piece without a time.
    """
    if line.kind is Kind.MARK:
        return [("class:mark", line.plain(room))]
    parts = _fragments(line, room, me)
    if line.history:
        # class:history first: a nick's own colour still wins, dimmed like the rest.
        return [(f"class:history {piece[0]} dim", piece[1]) for piece in parts]
    return parts


def _fragments(line: Line, room: str | None, me: str) -> StyleAndTextTuples:
    parts: StyleAndTextTuples = [("class:time", line.stamp + " ")]
    tag = line.room_tag(room)
    if tag:
        parts.append(("class:room", tag))
    if line.kind is Kind.ERROR:
        parts.append(("class:error", line.lead + line.text))
        return parts
    if line.kind is Kind.INFO:
        parts.append(("class:info", line.lead + line.text))
        return parts
    body = "class:event" if line.kind in _QUIET_KINDS else "class:own" if line.own else ""
    if line.mention:
        body = "class:mentioned"
    parts.append((body, line.lead))
    if line.nick:
        parts.append((f"fg:{nick_colour(line.nick)} bold", line.nick))
    parts.append((body, line.separator))
    if line.mention:
        parts.extend(("class:mention" if hit else body, piece) for hit, piece in split_mentions(line.text, me))
    else:
        parts.append((body, line.text))
    return parts


def safe_room(room: str | None) -> str | None:
    """A room name as it may be printed (control characters made visible)."""
    return visible(room) if room is not None else None


def to_ansi(parts: StyleAndTextTuples, depth: ColorDepth) -> str:
    """Styled pieces as one string of text and escape sequences, ending with a reset."""
    buffer = io.StringIO()
    output = Vt100_Output(buffer, lambda: Size(rows=24, columns=80), term="xterm")
    print_formatted_text(output, parts, STYLE, color_depth=depth)
    output.reset_attributes()
    output.flush()
    return buffer.getvalue()


class TerminalView:
    """Coloured lines for a person at a terminal, printed above the input line."""

    def __init__(self) -> None:
        # Asked of the real terminal before patch_stdout replaces sys.stdout.
        self.depth = create_output().get_default_color_depth()

    def show(self, line: Line, room: str | None, me: str) -> None:
        """Print one line; under patch_stdout it lands above the prompt.

        Only our own styling becomes escape sequences: control characters in the line's
        text are made visible first (describe.safe).
        """
        text = to_ansi(fragments(safe(line), safe_room(room), me), self.depth)
        # One write per line: the patched stdout is shared with the main thread.
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


class PlainView:
    """Plain lines on stdout, for pipes and scripts."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self._lock = threading.Lock()
        self._closed = False

    def show(self, line: Line, room: str | None, me: str) -> None:
        """Write one line and flush it, so a reading script sees it at once."""
        with self._lock:
            if self._closed:
                return
            try:
                self.out.write(safe(line).plain(safe_room(room)) + "\n")
                self.out.flush()
            except (BrokenPipeError, ValueError):
                # The reader went away (`lobby connect | head -1`): keep chatting, stop printing.
                self._closed = True
