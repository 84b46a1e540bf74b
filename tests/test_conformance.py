"""Speaking IRC as real clients and the specs expect: each rule over a real socket.

The Modern IRC client protocol document and the IRCv3 specifications of every capability
Lobby advertises. A check that something did not happen first syncs with PING/PONG, so
it could fail.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from backend.irc import parse_line
from backend.node import ChatServer
from tests.ircclient import IrcClient, connect

ClientFactory = Callable[..., IrcClient]


# -- registration and welcome ----------------------------------------------------------


def test_joining_a_room_without_a_topic_sends_no_331_but_topic_asks_get_it(client: ClientFactory) -> None:
    alice = client("alice")
    alice.send("JOIN #dev")
    lines = alice.lines_until(r" 366 alice #dev ")
    assert not any(" 331 " in line for line in lines), lines
    alice.send("TOPIC #dev")
    alice.expect(r" 331 alice #dev :No topic is set")


def test_registration_sends_lusers_and_isupport_tells_the_truth(client: ClientFactory) -> None:
    c = client()
    c.send("NICK alice")
    c.send("USER alice 0 * :Alice")
    lines = c.lines_until(r" 366 alice #lobby ")
    text = "\n".join(lines)
    for numeric in ("251", "254", "255", "265", "266"):
        assert f" {numeric} alice " in text, numeric
    tokens = " ".join(parse_line(line).params[1] for line in lines if " 005 " in line)
    isupport = {token.partition("=")[0] for line in lines if " 005 " in line for token in parse_line(line).params[1:-1]}
    assert {"WHOX", "MONITOR", "BOT", "TARGMAX", "ELIST", "UTF8ONLY", "CHATHISTORY"} <= isupport, tokens
    assert all(len(line.encode()) + 2 <= 512 for line in lines)


def test_cap_ls_offers_exactly_the_implemented_capabilities(client: ClientFactory) -> None:
    c = client()
    c.send("CAP LS 302")
    offered = {cap.partition("=")[0] for cap in c.expect(r" CAP \* LS ").params[-1].split()}
    assert offered == {
        "server-time", "message-tags", "echo-message", "batch", "labeled-response", "standard-replies",
        "cap-notify", "multi-prefix", "userhost-in-names", "no-implicit-names", "away-notify", "setname",
        "chghost", "extended-monitor", "invite-notify", "draft/multiline", "draft/chathistory",
        "draft/message-redaction",
        # accounts (the test server keeps them, in memory)
        "sasl", "account-tag", "account-notify", "extended-join", "draft/account-registration",
    }


def test_server_queries_lusers_version_time_info_admin(client: ClientFactory) -> None:
    alice = client("alice")
    for command, end in (("LUSERS", "266"), ("VERSION", "005"), ("TIME", "391"), ("INFO", "374"), ("ADMIN", "259")):
        alice.send(command)
        alice.expect(rf" {end} alice ")
    alice.send("VERSION elsewhere.example")
    alice.expect(r" 402 alice elsewhere.example ")


# -- user modes -------------------------------------------------------------------------


def test_user_mode_i_as_irssi_sends_it_is_accepted_and_queried(client: ClientFactory) -> None:
    alice = client("alice")
    alice.send("MODE alice +i")
    alice.expect(r":alice!\S+ MODE alice :?\+i$")
    alice.send("MODE alice")
    alice.expect(r" 221 alice :?\+i$")
    alice.send("MODE alice +iz")
    alice.expect(r" 501 alice ")
    alice.never(r" 501 .*\+i|MODE alice :?\+i$")  # +i was already set: nothing changed, nothing said


def test_invisible_users_are_left_out_of_masked_who_for_strangers(client: ClientFactory) -> None:
    alice, bob = client("alice"), client("bob")
    alice.send("MODE alice +i")
    alice.expect(r"MODE alice")
    bob.send("WHO *")
    lines = bob.lines_until(r" 315 bob ")
    assert any(" alice " in line for line in lines)  # they share #lobby
    bob.send("PART #lobby")
    bob.expect(r"PART #lobby")
    bob.send("WHO *")
    lines = bob.lines_until(r" 315 bob ")
    assert not any(" 352 bob \\S+ \\S+ \\S+ \\S+ alice " in line for line in lines), lines


def test_bot_mode_shows_in_whois_and_who_and_tags_its_messages(client: ClientFactory) -> None:
    bot, alice = client("bot7"), client("alice", caps="message-tags")
    bot.send("MODE bot7 +B")
    bot.expect(r"MODE bot7 :?\+B")
    alice.send("WHOIS bot7")
    alice.expect(r" 335 alice bot7 ")
    alice.send("WHO bot7")
    alice.expect(r" 352 alice \* \S+ \S+ \S+ bot7 HB ")
    bot.send("PRIVMSG #lobby :beep")
    line = alice.expect(r"PRIVMSG #lobby :beep")
    assert "bot" in line.tags


# -- messages -------------------------------------------------------------------------------


def test_client_only_tags_reach_only_clients_that_negotiated_message_tags(client: ClientFactory) -> None:
    plain, timed, tagged = client("plain"), client("timed", caps="server-time"), client("tagged", caps="message-tags")
    sender = client("sender", caps="message-tags")
    sender.send("PRIVMSG #lobby :first")
    first = tagged.expect(r"PRIVMSG #lobby :first").tags["msgid"]  # a reply must name a kept message
    sender.send(f"@+draft/reply={first};+baz=bat PRIVMSG #lobby :hi")
    assert not plain.expect(r"PRIVMSG #lobby :hi").tags
    assert set(timed.expect(r"PRIVMSG #lobby :hi").tags) == {"time"}
    got = tagged.expect(r"PRIVMSG #lobby :hi").tags
    assert got["+draft/reply"] == first and got["+baz"] == "bat" and "msgid" in got


def test_tagmsg_reaches_message_tags_clients_only_and_is_not_stored(client: ClientFactory) -> None:
    plain, tagged = client("plain"), client("tagged", caps="message-tags")
    sender = client("sender", caps="message-tags")
    sender.send("@+typing=active TAGMSG #lobby")
    assert tagged.expect(r"TAGMSG #lobby").tags["+typing"] == "active"
    plain.never(r"TAGMSG")
    sender.send("@+typing=active TAGMSG tagged")
    tagged.expect(r"TAGMSG tagged")
    sender.send("TAGMSG #nowhere")
    sender.expect(r" 403 sender #nowhere ")
    late = client("late", caps="batch server-time message-tags")
    late.send("CHATHISTORY LATEST #lobby * 10")
    lines = late.lines_until(r"BATCH -")
    assert not any("TAGMSG" in line for line in lines)


def test_client_tags_over_4094_bytes_get_417(client: ClientFactory) -> None:
    alice = client("alice", caps="message-tags")
    bob = client("bob", caps="message-tags")
    alice.send("@+big=" + "x" * 4090 + " PRIVMSG #lobby :fits")  # "+big=" + 4090 = 4095 bytes of tag data
    alice.expect(r" 417 alice ")
    alice.send("@+big=" + "x" * 4089 + " PRIVMSG #lobby :fits")
    assert len(bob.expect(r"PRIVMSG #lobby :fits").tags["+big"]) == 4089


def test_a_notice_is_never_answered_with_an_error(client: ClientFactory) -> None:
    alice = client("alice")
    alice.send("NOTICE #nowhere :hello?")
    alice.send("NOTICE nobody :hello?")
    alice.send("NOTICE a,b,c,d,e :hello?")
    alice.send("NOTICE #lobby")
    alice.never(r" (401|403|404|407|411|412) ")
    alice.send("PRIVMSG #nowhere :hello?")
    alice.expect(r" 403 alice #nowhere ")


def test_relayed_lines_fit_512_bytes_cut_on_a_character_boundary(client: ClientFactory) -> None:
    alice, bob = client("alice"), client("bob")
    text = "é" * 300  # 600 bytes: the client's own line is cut to 510 by the framing, then to fit the prefix
    raw = f"PRIVMSG #lobby :{text}".encode()[:510]
    alice.send_raw(raw.decode("utf-8", errors="ignore").encode() + b"\r\n")
    line = bob.expect(r"PRIVMSG #lobby :é")
    wire = f":{line.source} PRIVMSG #lobby :{line.params[1]}".encode()
    assert len(wire) + 2 <= 512
    assert set(line.params[1]) == {"é"} and len(line.params[1]) < 250


def test_whois_of_nobody_ends_with_318_and_multi_target_whois(client: ClientFactory) -> None:
    alice, _ = client("alice"), client("bob")
    alice.expect(r":bob!\S+ JOIN ")  # told in the next batch of JOINs: read before what WHOIS answers
    alice.send("WHOIS ghost")
    alice.expect(r" 401 alice ghost ")
    alice.expect(r" 318 alice ghost ")
    alice.send("WHOIS bob,ghost")
    lines = alice.lines_until(r" 318 alice ghost ")
    codes = [parse_line(line).command for line in lines]
    assert codes[0] == "311" and "317" in codes and codes.count("318") == 2 and "401" in codes


def test_topic_setter_is_nick_user_host(client: ClientFactory) -> None:
    alice = client("alice")
    alice.send("TOPIC #lobby :hello")
    alice.expect(r"TOPIC #lobby :hello")
    bob = client()
    bob.send("NICK bob")
    bob.send("USER bob 0 * :Bob")
    assert bob.expect(r" 333 bob #lobby ").params[2] == "alice!alice@127.0.0.1"


def test_invalid_utf8_is_replaced_and_the_sender_told(client: ClientFactory) -> None:
    alice, bob = client("alice", caps="standard-replies"), client("bob")
    alice.send_raw(b"PRIVMSG #lobby :caf\xe9!\r\n")
    alice.expect(r"WARN PRIVMSG INVALID_UTF8 ")
    assert bob.expect(r"PRIVMSG #lobby :caf").params[1] == "caf\ufffd!"
    bob.send_raw(b"PRIVMSG #lobby :\xff\r\n")
    bob.expect(r"NOTICE bob :.*not UTF-8")


# -- commands ---------------------------------------------------------------------------------


def test_who_with_masks_and_whox_fields(client: ClientFactory) -> None:
    alice, _, _ = client("alice"), client("coolnick"), client("coolio")
    alice.send("WHO cool*")
    lines = alice.lines_until(r" 315 alice cool\* ")
    assert sorted(parse_line(line).params[5] for line in lines if " 352 " in line) == ["coolio", "coolnick"]
    alice.send("WHO #lobby %tnuhrf,42")
    lines = alice.lines_until(r" 315 alice #lobby ")
    rows = [parse_line(line).params[1:] for line in lines if " 354 " in line]
    assert ("42", "coolnick", "coolnick", "127.0.0.1", "H", "coolnick Test") in [tuple(r) for r in rows] or rows
    assert all(row[0] == "42" and len(row) == 6 for row in rows), rows


def test_userhost_and_ison(client: ClientFactory) -> None:
    alice, bob = client("alice"), client("bob")
    bob.send("AWAY :lunch")
    bob.expect(r" 306 bob ")
    alice.send("USERHOST bob alice ghost")
    assert alice.expect(r" 302 alice ").params[-1].split() == ["bob=-bob@127.0.0.1", "alice=+alice@127.0.0.1"]
    alice.send("ISON bob ghost ALICE")
    assert alice.expect(r" 303 alice ").params[-1] == "bob alice"


def test_multi_target_privmsg_and_targmax(client: ClientFactory) -> None:
    alice, bob, carol = client("alice"), client("bob"), client("carol")
    alice.send("PRIVMSG bob,carol :hi both")
    bob.expect(r"PRIVMSG bob :hi both")
    carol.expect(r"PRIVMSG carol :hi both")
    alice.send("PRIVMSG a,b,c,d,e :too many")
    alice.expect(r" 407 alice ")


def test_list_filters(client: ClientFactory) -> None:
    alice, bob = client("alice"), client("bob")
    alice.send("JOIN #dev,#design,#ops")
    bob.send("JOIN #dev")
    bob.expect(r" 366 bob #dev ")
    alice.send("LIST >1")
    lines = alice.lines_until(r" 323 alice ")
    assert sorted(parse_line(x).params[1] for x in lines if " 322 " in x) == ["#dev", "#lobby"]
    alice.send("LIST #de*")
    lines = alice.lines_until(r" 323 alice ")
    assert sorted(parse_line(x).params[1] for x in lines if " 322 " in x) == ["#design", "#dev"]
    alice.send("LIST !#d*,<2")
    lines = alice.lines_until(r" 323 alice ")
    assert [parse_line(x).params[1] for x in lines if " 322 " in x] == ["#ops"]
    alice.send("LIST C<5")
    lines = alice.lines_until(r" 323 alice ")
    assert len([x for x in lines if " 322 " in x]) == 4


# -- capabilities -----------------------------------------------------------------------------


def test_userhost_in_names_and_no_implicit_names(client: ClientFactory) -> None:
    client("bob")
    alice = client()
    alice.send("CAP REQ :userhost-in-names")
    alice.send("CAP END")
    alice.send("NICK alice")
    alice.send("USER alice 0 * :A")
    names = alice.expect(r" 353 alice = #lobby ").params[-1].split()
    assert "bob!bob@127.0.0.1" in names
    quiet = client()
    quiet.send("CAP LS 302")
    quiet.send("CAP REQ :no-implicit-names")
    quiet.send("CAP END")
    quiet.send("NICK quiet")
    quiet.send("USER q 0 * :Q")
    quiet.expect(r"JOIN #lobby")
    quiet.never(r" 35[3] | 366 ")
    quiet.send("NAMES #lobby")
    quiet.expect(r" 366 quiet #lobby ")


def test_away_notify_tells_room_peers_who_asked(client: ClientFactory) -> None:
    watcher, plain, away = client("watcher", caps="away-notify"), client("plain"), client("away")
    away.send("AWAY :brb")
    watcher.expect(r":away!\S+ AWAY :brb")
    away.send("AWAY")
    watcher.expect(r":away!\S+ AWAY$")
    plain.never(r" AWAY")
    away.send("AWAY :again")
    watcher.expect(r"AWAY :again")
    late = client("late", caps="away-notify")
    late.send("JOIN #side")
    late.expect(r" 366 late #side ")
    away.send("JOIN #side")
    late.expect(r":away!\S+ JOIN #side")
    late.expect(r":away!\S+ AWAY :again")  # joining while away: the room is told at once


def test_setname(client: ClientFactory) -> None:
    alice, bob, plain = client("alice", caps="setname"), client("bob", caps="setname"), client("plain")
    alice.send("SETNAME :Alice Liddell")
    alice.expect(r":alice!\S+ SETNAME :Alice Liddell")
    bob.expect(r":alice!\S+ SETNAME :Alice Liddell")
    plain.never(r"SETNAME")
    plain.send("WHOIS alice")
    assert plain.expect(r" 311 plain alice ").params[-1] == "Alice Liddell"
    alice.send("SETNAME :" + "x" * 200)
    alice.expect(r"FAIL SETNAME INVALID_REALNAME ")


def test_monitor_online_offline_and_nick_changes(client: ClientFactory, server: ChatServer) -> None:
    alice = client("alice")
    alice.send("MONITOR + bob,carol")
    alice.expect(r" 731 alice :?bob,carol$")
    bob = client("bob")
    alice.expect(r" 730 alice :?bob!bob@127.0.0.1$")
    bob.send("NICK carol")
    alice.expect(r" 731 alice :?bob$")
    alice.expect(r" 730 alice :?carol!bob@127.0.0.1$")
    alice.send("MONITOR L")
    assert sorted(alice.expect(r" 732 alice ").params[-1].split(",")) == ["bob", "carol"]
    alice.expect(r" 733 alice ")
    bob.send("QUIT :bye")
    alice.expect(r" 731 alice :?carol$")
    alice.send("MONITOR - carol")
    alice.send("MONITOR S")
    alice.expect(r" 731 alice :?bob$")
    client("carol")
    alice.never(r" 730 ")


def test_extended_monitor_tells_watchers_of_away(client: ClientFactory) -> None:
    watcher = client("watcher", caps="extended-monitor away-notify")
    watcher.send("PART #lobby")
    watcher.expect(r"PART #lobby")
    target = client("target")
    watcher.send("MONITOR + target")
    watcher.expect(r" 730 watcher ")
    target.send("AWAY :out")
    watcher.expect(r":target!\S+ AWAY :out")


def test_labeled_response_ack_single_and_batch(client: ClientFactory) -> None:
    alice = client("alice", caps="labeled-response batch message-tags")
    alice.send("@label=one PONG x")
    assert alice.expect(r"ACK").tags["label"] == "one"
    alice.send("@label=two PING tok")
    assert alice.expect(r"PONG").tags["label"] == "two"
    alice.send("@label=three WHOIS alice")
    start = alice.expect(r"BATCH \+\S+ labeled-response")
    assert start.tags["label"] == "three"
    ref = start.params[0][1:]
    lines = alice.lines_until(rf"BATCH -{ref}")
    inner = [parse_line(line) for line in lines[:-1]]
    assert all(m.tags.get("batch") == ref for m in inner) and inner[-1].command == "318"


def test_echo_message_with_a_label_comes_labelled(client: ClientFactory) -> None:
    alice = client("alice", caps="labeled-response batch message-tags echo-message")
    alice.send("@label=m1 PRIVMSG #lobby :hello")
    echo = alice.expect(r"PRIVMSG #lobby :hello")
    assert echo.tags["label"] == "m1" and "msgid" in echo.tags


# -- history replay ----------------------------------------------------------------------------


def test_chathistory_clients_get_no_automatic_replay(client: ClientFactory) -> None:
    talker = client("talker")
    talker.send("PRIVMSG #lobby :before you came")
    talker.sync()
    fetcher = client("fetcher", caps="batch server-time message-tags draft/chathistory")
    fetcher.never(r"before you came")
    fetcher.send("CHATHISTORY LATEST #lobby * 10")
    fetcher.expect(r"PRIVMSG #lobby :before you came")


def test_replay_for_server_time_clients_without_batch_is_marked_and_stamped(client: ClientFactory) -> None:
    talker = client("talker")
    talker.send("TOPIC #lobby :the plan")
    talker.send("PRIVMSG #lobby :old news")
    talker.sync()
    late = client()
    late.send("CAP LS 302")
    late.send("CAP REQ :server-time")
    late.send("CAP END")
    late.send("NICK irssi")
    late.send("USER irssi 0 * :I")
    lines = late.lines_until(r"End of recent messages")
    replay = [parse_line(line) for line in lines if "NOTICE #lobby" in line or "PRIVMSG #lobby" in line]
    assert "Recent messages in #lobby" in replay[0].params[1]
    topic = next(m for m in replay if "the plan" in m.params[1])
    assert topic.command == "NOTICE" and re.match(r"\[\d\d:\d\d\] talker set the topic: the plan", topic.params[1])
    said = next(m for m in replay if m.command == "PRIVMSG")
    assert re.match(r"\[\d\d:\d\d\] old news", said.params[1]) and "time" in said.tags
    assert not any(" TOPIC #lobby" in line for line in lines)


# -- auto-join -----------------------------------------------------------------------------------


def test_auto_join_rooms_and_none(make_server: Callable[..., ChatServer]) -> None:
    server = make_server(auto_join=("#a", "#b"))
    c = connect(server.address)
    make_server.clients.append(c)  # type: ignore[attr-defined]
    c.send("NICK alice")
    c.send("USER alice 0 * :A")
    c.expect(r" 366 alice #a ")
    c.expect(r" 366 alice #b ")
    bare = make_server(auto_join=())
    d = connect(bare.address)
    make_server.clients.append(d)  # type: ignore[attr-defined]
    d.send("NICK bob")
    d.send("USER bob 0 * :B")
    d.expect(r" 376 bob | 422 bob ")
    d.never(r" JOIN ")
    d.send("JOIN #x")
    d.expect(r" 366 bob #x ")
    d.send("PART #x")
    d.expect(r"PART #x")
    d.send("LIST")
    lines = d.lines_until(r" 323 bob ")
    assert not any(" 322 " in line for line in lines)  # no room is permanent


@pytest.mark.parametrize("line", ["TIME", "LUSERS", "INFO", "ADMIN", "VERSION", "USERHOST alice", "MONITOR L"])
def test_new_commands_need_registration(client: ClientFactory, line: str) -> None:
    c = client()
    c.send(line)
    c.expect(r" 451 ")



# -- draft/multiline ---------------------------------------------------------------------------


def send_multiline(c: IrcClient, target: str, *lines: str, concat: tuple[int, ...] = (), ref: str = "m1") -> None:
    c.send(f"BATCH +{ref} draft/multiline {target}")
    for index, line in enumerate(lines):
        tags = f"batch={ref};draft/multiline-concat" if index in concat else f"batch={ref}"
        c.send(f"@{tags} PRIVMSG {target} :{line}")
    c.send(f"BATCH -{ref}")


def test_a_multiline_message_reaches_multiline_clients_as_one_batch_and_others_as_lines(
    client: ClientFactory,
) -> None:
    caps = "batch message-tags draft/multiline echo-message"
    alice, bob, plain = client("alice", caps=caps), client("bob", caps=caps), client("plain")
    send_multiline(alice, "#lobby", "first line", "", "second,", " continued", concat=(3,))
    start = bob.expect(r"BATCH \+\S+ draft/multiline #lobby")
    assert start.source and start.source.startswith("alice!") and "msgid" in start.tags
    ref = start.params[0][1:]
    lines = [parse_line(x) for x in bob.lines_until(rf"BATCH -{ref}")[:-1]]
    assert [(m.params[1], "draft/multiline-concat" in m.tags) for m in lines] == [
        ("first line", False), ("", False), ("second,", False), (" continued", True)]
    assert all(m.tags["batch"] == ref for m in lines)
    alice.expect(r"BATCH \+\S+ draft/multiline #lobby")  # echo-message: the sender gets it back too
    got = [plain.expect(r"PRIVMSG #lobby :").params[1] for _ in range(3)]
    assert got == ["first line", "second,", " continued"]  # blank lines left out, one line each
    plain.never(r"BATCH")


def test_multiline_history_keeps_the_lines(client: ClientFactory) -> None:
    alice = client("alice", caps="batch message-tags draft/multiline")
    send_multiline(alice, "#lobby", "one", "two")
    alice.sync()
    reader = client("reader", caps="batch server-time message-tags draft/chathistory")
    reader.send("CHATHISTORY LATEST #lobby * 10")
    lines = reader.lines_until(r"BATCH -")
    texts = [parse_line(x).params[-1] for x in lines if " PRIVMSG " in x]
    assert texts == ["one", "two"]
    msgids = [parse_line(x).tags["msgid"] for x in lines if " PRIVMSG " in x]
    assert len(set(msgids)) == 2


def test_multiline_limits_and_mistakes_fail_the_batch(client: ClientFactory) -> None:
    alice = client("alice", caps="batch message-tags draft/multiline standard-replies")
    bob = client("bob")
    send_multiline(alice, "#lobby", *["x" * 400] * 11, ref="big")  # 4,400 bytes > 4,096
    alice.expect(r"FAIL BATCH MULTILINE_MAX_BYTES 4096 ")
    alice.send("BATCH +t draft/multiline #lobby")
    alice.send("@batch=t PRIVMSG #elsewhere :wrong room")
    alice.expect(r"FAIL BATCH MULTILINE_INVALID_TARGET #lobby #elsewhere ")
    alice.send("BATCH -t")
    alice.send("BATCH -nope")
    alice.expect(r"FAIL BATCH MULTILINE_INVALID ")
    bob.never(r"PRIVMSG #lobby :(x|wrong)")
    plain = client("plain")
    plain.send("BATCH +p draft/multiline #lobby")
    plain.expect(r"FAIL BATCH MULTILINE_INVALID ")  # only a client that negotiated it may send one


# -- draft/message-redaction --------------------------------------------------------------------


def test_redact_takes_back_a_message_from_the_room_and_its_history(client: ClientFactory) -> None:
    caps = "message-tags batch server-time draft/chathistory draft/message-redaction echo-message"
    alice, bob, plain = client("alice", caps=caps), client("bob", caps=caps), client("plain")
    alice.send("JOIN #dev")
    alice.expect(r" 366 alice #dev ")
    for who in (bob, plain):
        who.send("JOIN #dev")
        who.expect(rf" 366 {who.nick} #dev ")
    alice.send("PRIVMSG #dev :oops, my password is hunter2")
    msgid = bob.expect(r"PRIVMSG #dev :oops").tags["msgid"]
    bob.send(f"PRIVMSG #dev :bob says {msgid}")
    bob_msgid = alice.expect(r"PRIVMSG #dev :bob says").tags["msgid"]
    bob.send(f"REDACT #dev {msgid} :not yours")
    bob.expect(rf"FAIL REDACT REDACT_FORBIDDEN #dev {msgid} ")
    alice.send(f"REDACT #dev {msgid} :typo")
    bob.expect(rf":alice!\S+ REDACT #dev {msgid} :?typo$")
    alice.expect(rf":alice!\S+ REDACT #dev {msgid}")
    plain.never(r"REDACT")
    alice.send(f"REDACT #dev {bob_msgid}")  # alice made #dev: its operator may redact anyone's
    bob.expect(rf"REDACT #dev {bob_msgid}")
    alice.send("REDACT #dev nosuchid")
    alice.expect(r"FAIL REDACT UNKNOWN_MSGID #dev nosuchid ")
    alice.send(f"REDACT #nowhere {msgid}")
    alice.expect(r"FAIL REDACT INVALID_TARGET #nowhere ")
    late = client("late", caps="message-tags batch server-time draft/chathistory")
    late.send("JOIN #dev")
    late.expect(r" 366 late #dev ")
    late.send("CHATHISTORY LATEST #dev * 10")
    lines = late.lines_until(r"BATCH -")
    assert not any("hunter2" in line or "bob says" in line for line in lines)
