"""SEARCH: full-text search over the history of the rooms the user is in, and, signed in to an
account, of its kept private conversations (`in:nick` for one of them).

    SEARCH <query> [<limit>]

The query is words to find (all of them; "double quotes" keep a phrase together) and
filters: `from:nick`, `in:#room`, `after:YYYY-MM-DD`, `before:YYYY-MM-DD` (a date is
its start, UTC; a CHATHISTORY timestamp such as 2024-05-01T12:00:00Z works too).
Several plain parameters are joined with spaces, so `SEARCH deploy from:bob 20` and
`SEARCH :deploy from:bob` both work; a last parameter of digits alone (and not the
only one) is the limit, at most SEARCH_MAX, which is also the default.

The answer is one `draft/search` batch of the matching messages, newest first, each
with its original `time` and `msgid` tags, so that a client can fetch its context with
`CHATHISTORY AROUND <room> msgid=...`. A client without `batch` gets the results as
server notices, each led by its date, room and sender, between two notices: never
as lines that could pass for something said now. Problems are standard replies:
`FAIL SEARCH INVALID_PARAMS` (nothing to search for, a bad filter, date or limit) and
`FAIL SEARCH INVALID_TARGET` (an `in:` room the user is not in). Without a history,
or one that cannot be searched, the batch is empty.
"""

from __future__ import annotations

import itertools
import re
import time
from datetime import UTC, datetime

from ..irc import Message, fold
from .chat import Chat
from .chathistory import Fail, parse_ref
from .client import Client
from .envelope import TAGS_NONE, format_time
from .history import DM_PREFIX, DM_SEPARATOR, HistorySearch, SearchQuery, Stored, conversation_key

SEARCH_MAX = 50
# Private conversations searched at most (the newest ones).
CONVERSATIONS_MAX = 500
QUERY_MAX = 400  # characters
WORDS_MAX = 16
_DATE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)$")
# A "quoted phrase" or a run of anything else; a quote left open is just a character of a word.
_TERM = re.compile(r'"([^"]*)"|(\S+)')
_batch_ids = itertools.count(1)


class SearchFail(Exception):
    """A standard reply: FAIL SEARCH <code> [<context>] :<text>."""

    def __init__(self, code: str, context: str, text: str) -> None:
        super().__init__(code, context, text)
        self.code = code
        # Only what can travel as a middle parameter (user input may hold anything).
        self.context = context if context and " " not in context and not context.startswith(":") else ""
        self.text = text


def searchable(chat: Chat) -> HistorySearch | None:
    """The chat's history if it can be searched (SQLite with its index), else None."""
    return chat.history if isinstance(chat.history, HistorySearch) else None


def parse_date(raw: str) -> int:
    """YYYY-MM-DD (its start, UTC) or a CHATHISTORY timestamp, as milliseconds since the epoch."""
    if m := _DATE.match(raw):
        try:
            when = datetime(int(m[1]), int(m[2]), int(m[3]), tzinfo=UTC)
        except ValueError:
            raise SearchFail("INVALID_PARAMS", raw, "No such date") from None
        return int(when.timestamp()) * 1000
    try:
        ref = parse_ref("timestamp=" + raw)
    except Fail:
        raise SearchFail("INVALID_PARAMS", raw, "Dates are YYYY-MM-DD (UTC) or YYYY-MM-DDThh:mm:ssZ") from None
    assert ref.ts_ms is not None
    return ref.ts_ms


def parse_query(text: str, my_rooms: dict[str, str], limit: int = SEARCH_MAX,
                my_conversations: dict[str, str] | None = None) -> SearchQuery:
    """A SearchQuery from what the user typed; my_rooms maps folded names of their rooms to names,
    my_conversations folded partners' names to the keys their private conversations are kept under.

    Raises SearchFail: INVALID_TARGET for an `in:` room they are not in (or a conversation they
    don't have), INVALID_PARAMS for the rest.
    """
    conversations = my_conversations or {}
    if len(text) > QUERY_MAX:
        raise SearchFail("INVALID_PARAMS", "", f"The query is longer than {QUERY_MAX} characters")
    words: list[str] = []
    filters: dict[str, str] = {}
    for m in _TERM.finditer(text):
        phrase, term = m[1], m[2]
        key, colon, value = (term or "").partition(":")
        if phrase is None and colon and key.lower() in ("from", "in", "before", "after"):
            if not value or key.lower() in filters:
                raise SearchFail("INVALID_PARAMS", term, f"{key.lower()}: needs a value, once")
            filters[key.lower()] = value
            continue
        word = phrase if phrase is not None else term
        # Only what holds a letter or digit can match: "*", "-" or "((" alone are no words at all.
        if any(ch.isalnum() for ch in word):
            words.append(word)
    if len(words) > WORDS_MAX:
        raise SearchFail("INVALID_PARAMS", "", f"At most {WORDS_MAX} words")
    if not words and not filters:
        raise SearchFail("INVALID_PARAMS", "", "Nothing to search for: give words or a filter")
    rooms = (*my_rooms, *conversations.values())
    if "in" in filters:
        room = fold(filters["in"])
        if room in my_rooms:
            rooms = (room,)
        elif room in conversations:
            rooms = (conversations[room],)
        else:
            raise SearchFail("INVALID_TARGET", filters["in"], "You are not in that room")
    after = parse_date(filters["after"]) if "after" in filters else None
    before = parse_date(filters["before"]) if "before" in filters else None
    nick = fold(filters["from"]) if "from" in filters else None
    return SearchQuery(rooms, tuple(words), nick, after, before, limit)


def split_params(params: list[str]) -> tuple[str, int]:
    """The query and the limit from SEARCH's parameters."""
    limit = SEARCH_MAX
    if len(params) >= 2 and params[-1].isdigit():
        limit = int(params[-1])
        if limit < 1:
            raise SearchFail("INVALID_PARAMS", params[-1], "The limit is a number from 1")
        params = params[:-1]
    return " ".join(params), min(limit, SEARCH_MAX)


def handle_search(chat: Chat, client: Client, msg: Message) -> None:
    """SEARCH <query> [<limit>]: the newest matching messages of the user's rooms (and, signed in,
    private conversations), newest first."""
    my_rooms = {fold(name): name for name in chat.hub.rooms_of(client)}
    partners = conversations_of(chat, client)
    keys = {folded: conversation_key(client.account or "", other) for folded, other in partners.items()}
    try:
        text, limit = split_params(list(msg.params))
        query = parse_query(text, my_rooms, limit, keys)
    except SearchFail as fail:
        context = (fail.context,) if fail.context else ()
        client.send_from_server("FAIL", "SEARCH", fail.code, *context, fail.text)
        return
    history = searchable(chat)
    rows: list[Stored] = []
    if history is not None and query.rooms:
        try:
            rows = history.search(query)
        except TimeoutError:
            client.send_from_server("FAIL", "SEARCH", "TEMPORARILY_UNAVAILABLE", "History is busy, try again")
            return
    send_results(client, rows, my_rooms, partners)


def conversations_of(chat: Chat, client: Client) -> dict[str, str]:
    """The other accounts of client's account's kept private conversations, by folded name."""
    if client.account is None or chat.history is None:
        return {}
    try:
        found = chat.history.conversations(client.account, CONVERSATIONS_MAX)
    except TimeoutError:
        return {}
    return {fold(other): other for other, _ in found}


def send_results(client: Client, rows: list[Stored], my_rooms: dict[str, str],
                 partners: dict[str, str] | None = None) -> None:
    """The results as one draft/search batch, or as dated notices for a client without batch.

    A private message comes as it did (to the partner from the user, or to the user from the
    partner), as CHATHISTORY gives it: clients already know which conversation that is.
    """
    partners = partners or {}
    # As replay on join: a batch only where its lines also carry their original time.
    batched = "batch" in client.caps and client.render_key != TAGS_NONE and client.presenter is None
    if not batched:
        client.send_from_server("NOTICE", client.nick, f"Search results ({len(rows)}, newest first, times in UTC):")
    else:
        batch_id = f"s{next(_batch_ids)}"
        client.send_from_server("BATCH", f"+{batch_id}", "draft/search")
    for row in rows:
        room = my_rooms.get(fold(row.target), row.target)
        where = room
        if row.target.startswith(DM_PREFIX):
            # A kept private message: to the partner from the user, or to the user from the partner.
            ends = row.target[len(DM_PREFIX):].split(DM_SEPARATOR)
            other = next((end for end in ends if end != fold(client.account or "")), ends[0])
            partner = partners.get(other, other)
            sender = fold(row.source.split("!", 1)[0])
            room = client.nick if sender == other else partner
            where = f"{partner} (private)"
        if not batched:
            when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(row.ts_ms / 1000))
            said = row.text
            if said.startswith("\x01ACTION ") and said.endswith("\x01"):
                said = "* " + said[len("\x01ACTION "):-1]
            line = f"[{when}] {where} <{row.source.split('!', 1)[0]}> {said}"
            client.send_from_server("NOTICE", client.nick, line)
            continue
        tags = {"batch": batch_id, "time": format_time(row.ts_ms / 1000)}
        if "message-tags" in client.caps:
            tags["msgid"] = row.msgid
        client.send(Message(row.command, (room, row.text), row.source, tags))
    if batched:
        client.send_from_server("BATCH", f"-{batch_id}")
    else:
        client.send_from_server("NOTICE", client.nick, "End of search results")

