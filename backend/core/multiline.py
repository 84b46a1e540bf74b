"""draft/multiline (IRCv3): a client sends several lines as one message, inside a BATCH of its own.

    BATCH +ref draft/multiline #room
    @batch=ref PRIVMSG #room :first line
    @batch=ref;draft/multiline-concat PRIVMSG #room :, continued on the same line
    BATCH -ref

The lines are collected here until the batch ends, checked against the limits we advertise,
then sent as one message (core/messages.py): as the same kind of batch to clients that
negotiated draft/multiline, as separate lines to everyone else (core/envelope.py).
"""

from __future__ import annotations

from ..irc import Message, fold
from ..irc.caps import MULTILINE_MAX_BYTES, MULTILINE_MAX_LINES
from .batches import OpenBatch
from .chat import Chat
from .client import Client
from .messages import send_lines

MAX_BYTES = MULTILINE_MAX_BYTES
MAX_LINES = MULTILINE_MAX_LINES
# Batches a client may have open at once: one is what clients use; a few more is slack.
MAX_OPEN = 4


def handle_batch(chat: Chat, client: Client, msg: Message) -> None:
    """BATCH +ref draft/multiline <target> opens a message; BATCH -ref sends it."""
    ref = msg.params[0]
    if ref.startswith("+") and len(ref) > 1:
        kind = msg.param(1)
        if kind != "draft/multiline" or not client.has("draft/multiline") or len(msg.params) < 3:
            _fail(client, "MULTILINE_INVALID", "Only draft/multiline batches can be sent, with a target")
            return
        if len(client.batches) >= MAX_OPEN:
            _fail(client, "MULTILINE_INVALID", "Too many batches open at once")
            return
        client_tags = {k: v for k, v in msg.tags.items() if k.startswith("+")}
        client.batches[ref[1:]] = OpenBatch(msg.params[2], client_tags)
        return
    batch = client.batches.pop(ref[1:], None) if ref.startswith("-") else None
    if batch is None:
        _fail(client, "MULTILINE_INVALID", "No such batch is open")
        return
    if batch.failed:
        return
    if not batch.lines or not any(text for text, _ in batch.lines):
        _fail(client, "MULTILINE_INVALID", "The message has no text")
        return
    send_lines(chat, client, batch.command, batch.target, tuple(batch.lines), batch.tags)


def collect(client: Client, msg: Message) -> bool:
    """Keep a line that belongs to one of client's open batches; False when it belongs to none."""
    ref = msg.tags.get("batch")
    batch = client.batches.get(ref) if ref else None
    if batch is None:
        return False
    if batch.failed:
        return True
    text = msg.param(1)
    concat = "draft/multiline-concat" in msg.tags
    if msg.command not in ("PRIVMSG", "NOTICE") or (batch.command and msg.command != batch.command):
        batch.failed = _fail(client, "MULTILINE_INVALID", "A multiline message is all PRIVMSG or all NOTICE")
    elif fold(msg.param(0)) != fold(batch.target):
        batch.failed = _fail(client, "MULTILINE_INVALID_TARGET", batch.target, msg.param(0),
                             "Every line must go to the batch's target")
    elif concat and not text:
        batch.failed = _fail(client, "MULTILINE_INVALID", "A continued line can't be blank")
    elif len(batch.lines) >= MAX_LINES:
        batch.failed = _fail(client, "MULTILINE_MAX_LINES", str(MAX_LINES), f"At most {MAX_LINES} lines")
    elif batch.size + len(text.encode("utf-8")) > MAX_BYTES:
        batch.failed = _fail(client, "MULTILINE_MAX_BYTES", str(MAX_BYTES), f"At most {MAX_BYTES} bytes")
    else:
        batch.command = msg.command
        batch.lines.append((text, concat))
        batch.size += len(text.encode("utf-8"))
    return True


def _fail(client: Client, code: str, *params: str) -> bool:
    client.send_from_server("FAIL", "BATCH", code, *params)
    return True
