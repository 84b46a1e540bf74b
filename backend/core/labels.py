"""labeled-response (IRCv3): the replies to a labelled command carry its label.

While the command runs, what the client is sent is gathered (Client.gathered); then
nothing becomes an ACK, one reply carries the label itself, and several go inside a
`labeled-response` batch whose opening line carries it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager

from ..irc import Message
from .client import Client

_batch_ids = itertools.count(1)


@contextmanager
def labelled(client: Client, label: str) -> Iterator[None]:
    """Gather what client is sent inside the block, then send it labelled."""
    outer = client.gathered
    client.gathered = []
    try:
        yield
    finally:
        replies, client.gathered = client.gathered, outer
        _send(client, label, replies)


def _send(client: Client, label: str, replies: list[Message]) -> None:
    if not replies:
        client.send(Message("ACK", (), client.server_name, {"label": label}))
        return
    if len(replies) == 1:
        m = replies[0]
        client.send(Message(m.command, m.params, m.source, {**m.tags, "label": label}))
        return
    ref = f"l{next(_batch_ids)}"
    client.send(Message("BATCH", (f"+{ref}", "labeled-response"), client.server_name, {"label": label}))
    for m in replies:
        # A reply already in a batch of its own (a chathistory answer) stays in it: only the
        # opening of that inner batch is tagged with ours.
        tags = m.tags if "batch" in m.tags else {**m.tags, "batch": ref}
        client.send(Message(m.command, m.params, m.source, tags))
    client.send(Message("BATCH", (f"-{ref}",), client.server_name))
