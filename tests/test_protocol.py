"""Unit tests of the pure protocol layer: no sockets here."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.irc import (
    MAX_FRAME_BYTES,
    LineBuffer,
    LineTooLong,
    Message,
    ProtocolError,
    check_length,
    decode,
    decode_checked,
    escape_tag_value,
    fold,
    is_valid_channel,
    is_valid_nick,
    parse_line,
    split_text,
    unescape_tag_value,
)

# Parameters that a middle position can carry: no spaces, not empty, no leading colon.
middle = st.text(
    alphabet=st.characters(blacklist_characters=" \r\n\0", blacklist_categories=("Cs",)), min_size=1
).filter(lambda s: not s.startswith(":"))
trailing = st.text(alphabet=st.characters(blacklist_characters="\r\n\0", blacklist_categories=("Cs",)))
tag_key = st.from_regex(r"\A\+?[a-z][a-z0-9-]{0,10}\Z")
tag_value = st.text(alphabet=st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)))


def test_parse_full_line() -> None:
    msg = parse_line("@time=2026-01-01T00:00:00.000Z;msgid=abc :nick!u@h PRIVMSG #room :hello there")
    assert msg.tags == {"time": "2026-01-01T00:00:00.000Z", "msgid": "abc"}
    assert msg.source == "nick!u@h"
    assert msg.command == "PRIVMSG"
    assert msg.params == ("#room", "hello there")


def test_parse_tolerates_extra_spaces_and_lowercase_commands() -> None:
    msg = parse_line("privmsg   #room   :a  b")
    assert msg.command == "PRIVMSG"
    assert msg.params == ("#room", "a  b")


def test_parse_empty_trailing_and_colon_inside() -> None:
    assert parse_line("TOPIC #r :").params == ("#r", "")
    assert parse_line("PRIVMSG #r ::)").params == ("#r", ":)")
    assert parse_line("PING :x").params == ("x",)


@pytest.mark.parametrize("line", ["", "   ", "@a=b", ":source", "@a=b :source "])
def test_parse_without_command_is_an_error(line: str) -> None:
    with pytest.raises(ProtocolError):
        parse_line(line)


def test_format_adds_colon_only_when_needed() -> None:
    assert Message("JOIN", ("#r",)).format() == "JOIN #r"
    assert Message("PING", ("a", "b")).format() == "PING a b"
    # Text always goes as a trailing parameter, for naive clients' sake.
    assert Message("PRIVMSG", ("#r", "hi")).format() == "PRIVMSG #r :hi"
    assert Message("PRIVMSG", ("#r", "hi there")).format() == "PRIVMSG #r :hi there"
    assert Message("PRIVMSG", ("#r", "")).format() == "PRIVMSG #r :"
    assert Message("PRIVMSG", ("#r", ":)")).format() == "PRIVMSG #r ::)"


def test_format_refuses_a_middle_param_with_a_space() -> None:
    with pytest.raises(ValueError):
        Message("PRIVMSG", ("#a b", "x")).format()


def test_to_bytes_never_lets_a_newline_inject_a_second_line() -> None:
    data = Message("PRIVMSG", ("#r", "one\r\nQUIT :two")).to_bytes()
    assert data.count(b"\r\n") == 1 and data.endswith(b"\r\n")


@given(
    command=st.sampled_from(["PRIVMSG", "NOTICE", "JOIN", "001", "TOPIC"]),
    middles=st.lists(middle, max_size=4),
    last=st.one_of(st.none(), trailing),
    source=st.one_of(st.none(), middle),
    tags=st.dictionaries(tag_key, tag_value, max_size=3),
)
def test_format_then_parse_round_trips(
    command: str, middles: list[str], last: str | None, source: str | None, tags: dict[str, str]
) -> None:
    params = (*middles, last) if last is not None else tuple(middles)
    msg = Message(command, params, source, tags)
    assert parse_line(msg.format()) == msg


@given(tag_value)
def test_tag_escaping_round_trips(value: str) -> None:
    escaped = escape_tag_value(value)
    assert not any(c in escaped for c in "; \r\n")
    assert unescape_tag_value(escaped) == value


def test_tag_escapes_from_the_spec() -> None:
    assert escape_tag_value("a;b c\\d\r\n") == "a\\:b\\sc\\\\d\\r\\n"
    # Unknown escapes drop the backslash; a trailing lone backslash is dropped.
    assert unescape_tag_value("a\\bc\\") == "abc"


@given(st.binary(max_size=600))
def test_parse_of_arbitrary_bytes_gives_a_message_or_a_protocol_error(data: bytes) -> None:
    for raw in LineBuffer().feed(data + b"\n"):
        if isinstance(raw, LineTooLong):
            continue
        try:
            msg = parse_line(decode(raw))
        except ProtocolError:
            continue
        assert msg.command


def test_line_buffer_accepts_crlf_and_bare_lf() -> None:
    buf = LineBuffer()
    assert buf.feed(b"A\r\nB\nC") == [b"A", b"B"]
    assert buf.feed(b"\r\n") == [b"C"]


def test_line_buffer_one_byte_at_a_time() -> None:
    buf = LineBuffer()
    out: list[bytes | LineTooLong] = []
    for byte in b"NICK alice\r\nUSER a 0 * :A\r\n":
        out.extend(buf.feed(bytes([byte])))
    assert out == [b"NICK alice", b"USER a 0 * :A"]


def test_line_buffer_bounds_a_line_without_end() -> None:
    buf = LineBuffer()
    out = buf.feed(b"x" * (MAX_FRAME_BYTES + 10))
    assert len(out) == 1 and isinstance(out[0], LineTooLong)
    assert buf.feed(b"y" * (MAX_FRAME_BYTES + 10)) == []  # still the same overlong line: one report
    assert buf.feed(b"tail\nPING x\n") == [b"PING x"]


def test_check_length_separates_tags_from_body() -> None:
    check_length(b"P" * 510)
    with pytest.raises(LineTooLong):
        check_length(b"P" * 511)
    # Client tag data may be 4094 bytes (message-tags); the rest of 8191 is for the server's tags.
    check_length(b"@" + b"t" * 4094 + b" " + b"P" * 510)
    with pytest.raises(LineTooLong):
        check_length(b"@" + b"t" * 4095 + b" PING x")


def test_decode_replaces_invalid_utf8_and_drops_nul() -> None:
    assert decode(b"caf\xc3\xa9 \xff\x00!") == "café \ufffd!"
    assert decode_checked(b"caf\xc3\xa9 \xff\x00!") == ("café \ufffd!", False)
    assert decode_checked(b"caf\xc3\xa9\x00!") == ("café!", True)


@pytest.mark.parametrize("nick", ["alice", "Вася", "李雷", "a_b-c[1]", "x" * 30, "{bot}|2", "`^\\"])
def test_valid_nicks(nick: str) -> None:
    assert is_valid_nick(nick)


@pytest.mark.parametrize("nick", ["", "1abc", "-abc", "x" * 31, "a b", "a,b", "a!b", "a@b", "#chan", "a:b", "a.b"])
def test_invalid_nicks(nick: str) -> None:
    assert not is_valid_nick(nick)


def test_fold_is_case_insensitive_in_any_script() -> None:
    assert fold("Alice") == fold("ALICE") == fold("alice")
    assert fold("Вася") == fold("ВАСЯ")
    assert fold("Straße") == fold("STRASSE")


@pytest.mark.parametrize(("name", "ok"), [("#lobby", True), ("#ру", True), ("lobby", False), ("#", False),
                                          ("#a b", False), ("#a,b", False), ("#" + "x" * 50, False)])
def test_channel_names(name: str, ok: bool) -> None:
    assert is_valid_channel(name) is ok


@given(st.text(max_size=2000), st.integers(min_value=4, max_value=500))
def test_split_text_keeps_every_piece_small_and_loses_no_words(text: str, limit: int) -> None:
    pieces = split_text(text, limit)
    assert all(len(p.encode("utf-8")) <= limit for p in pieces)
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")
