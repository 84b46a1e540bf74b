"""History in the chat page, in Debian's Chromium: the join replay, scroll-to-load-older, and
a reconnect that leaves no gap and shows nothing twice.

The chat server keeps its history in a SQLite file under tmp_path, so that a restarted
server on the same file still has it. Flood control is off so that a terminal user can
say 200 lines at once. As in test_page.py, waiting is done with locators and expect().
"""

from __future__ import annotations

import re
import secrets
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from backend.core import chathistory
from backend.node import ChatServer
from tests.ircclient import connect
from tests.pagehelpers import IrcFactory, PageFactory, expect, joined, say_all

pytest_plugins = ["tests.webfixtures"]
pytestmark = pytest.mark.browser



@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "lobby.db")


@pytest.fixture
def chat_server(make_server: Callable[..., ChatServer], db_path: str) -> ChatServer:
    """The webfixtures chat server, with history in a file and no flood control."""
    return make_server(webirc_password=secrets.token_urlsafe(18), db_path=db_path, flood=False)


def scroll_to_top(page: Any) -> None:
    page.locator("#messages").evaluate("el => { el.scrollTop = 0; }")


def iso(ts_ms: int) -> str:
    """A stored time as the page writes it in <time datetime>: Date.toISOString()."""
    when = datetime.fromtimestamp(ts_ms // 1000, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S") + f".{ts_ms % 1000:03d}Z"


def line_texts(page: Any) -> list[str]:
    """The text of every message line in the open buffer, in page order."""
    texts: list[str] = page.locator("#messages .line.message .body").all_text_contents()
    return texts


def test_scrolling_up_before_the_joins_history_is_complete_still_loads_older_lines(
    new_page: PageFactory, irc_user: IrcFactory, chat_server: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user at the top when the join's history completes (its sync PONG) gets older lines then."""
    carol = irc_user("carol")
    say_all(carol, [f"line {i:03d}" for i in range(120)])
    release = threading.Event()
    send_batch = chathistory.send_batch
    held = threading.Event()

    def held_send_batch(client: Any, target: str, rows: Any, room: str) -> None:
        send_batch(client, target, rows, room)  # the join's first page is sent...
        if client.nick == "alice" and not held.is_set():
            held.set()
            release.wait(30)  # ...but the page's sync PING waits behind it

    monkeypatch.setattr(chathistory, "send_batch", held_send_batch)
    page = new_page()
    try:
        joined(page, "alice")
        lines = page.locator("#messages .line.message")
        expect(lines).to_have_count(50)
        scroll_to_top(page)  # too early to ask: the page is still waiting for its sync PONG
        # A scroll event is handled before the next frame is drawn: after two, it has been.
        page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
    finally:
        release.set()
    expect(lines).to_have_count(100)


def test_replay_then_scrolling_up_loads_all_200_older_lines_once_in_order(
    new_page: PageFactory, irc_user: IrcFactory, chat_server: ChatServer
) -> None:
    carol = irc_user("carol")
    texts = [f"line {i:03d}" + (", alice look" if i == 190 else "") for i in range(200)]
    say_all(carol, texts)
    page = new_page()
    joined(page, "alice")
    lines = page.locator("#messages .line.message")

    # The replay: the last 50, dimmed, under a quiet divider, above "You joined".
    expect(lines).to_have_count(50)
    expect(page.locator("#messages .line.history")).to_have_count(50)
    marker = page.locator("#messages .history-marker")
    expect(marker).to_have_text("earlier messages")
    expect(page.locator("#messages > li").first).to_have_class(re.compile(r"history-marker"))
    expect(page.locator("#messages .line.event", has_text="You joined #lobby")).to_have_count(1)
    order = page.locator("#messages > li").evaluate_all(
        "els => els.map(el => el.classList.contains('history') ? 'h'"
        " : el.textContent.includes('You joined') ? 'j' : '')")
    assert order.index("j") > max(i for i, kind in enumerate(order) if kind == "h")
    assert line_texts(page) == [f"carol: {t}" for t in texts[150:]]
    # An old mention of alice is not a mention now.
    expect(page.locator("#messages .line.mention")).to_have_count(0)

    # Scrolled to the top, 50 older lines come each time, above the others.
    for count in (100, 150, 200):
        scroll_to_top(page)
        expect(lines).to_have_count(count)
        expect(marker).to_have_text("earlier messages")
        # The view stays on the lines the user was reading, not at the new top.
        assert page.locator("#messages").evaluate("el => el.scrollTop") > 0
    scroll_to_top(page)
    expect(marker).to_have_text("beginning of the conversation")
    expect(lines).to_have_count(200)

    assert line_texts(page) == [f"carol: {t}" for t in texts]
    rows = chat_server.history.latest("#lobby", 200)  # type: ignore[union-attr]
    assert [row.text for row in rows] == texts
    shown = lines.evaluate_all("els => els.map(el => [el.dataset.msgid, el.querySelector('time').dateTime])")
    assert shown == [[row.msgid, iso(row.ts_ms)] for row in rows]  # each with its original time
    expect(page.locator("#messages .line.mention")).to_have_count(0)
    expect(page.locator("#buffers .badge")).to_have_count(0)
    assert page.errors == []


def test_a_reconnect_after_a_restart_on_the_same_file_leaves_no_gap_and_no_repeat(
    new_page: PageFactory, irc_user: IrcFactory, chat_server: ChatServer,
    make_server: Callable[..., ChatServer], web_app: Flask, db_path: str,
) -> None:
    carol = irc_user("carol")
    page = new_page()
    joined(page, "alice")
    before = [f"before {i}" for i in range(10)]
    say_all(carol, before)
    page.locator("#message").fill("alice was here")
    page.locator("#message").press("Enter")
    carol.expect(r"PRIVMSG #lobby :alice was here")
    expect(page.locator("#messages .line.message")).to_have_count(11)

    # While the page can't get back in (the bridge dials a port nobody listens on),
    # the server restarts on the same file and 150 lines are said: more than the
    # 50 a join replays, and more than one 100-line catch-up page.
    address = web_app.config["LOBBY_CHAT_ADDRESS"]
    with socket.socket() as nobody:
        nobody.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        web_app.config["LOBBY_CHAT_ADDRESS"] = nobody.getsockname()
        port = chat_server.address[1]
        chat_server.stop()
        expect(page.locator("#status")).to_contain_text("reconnecting…")
        restarted = make_server(port=port, webirc_password=chat_server.config.webirc_password,
                                db_path=db_path, flood=False)
        dave = connect(restarted.address, "dave")
        make_server.clients.append(dave)  # type: ignore[attr-defined]
        missed = [f"missed {i:03d}" for i in range(150)]
        say_all(dave, missed)
        web_app.config["LOBBY_HUB"] = restarted.hub
        web_app.config["LOBBY_CHAT_ADDRESS"] = address

    expect(page.locator("#status")).to_have_text("online", timeout=60_000)
    expect(page.locator("#messages")).to_contain_text("You rejoined #lobby")
    after = ["after 0", "after 1"]
    say_all(dave, after)
    expected = [f"carol: {t}" for t in before] + ["alice: alice was here"] + \
        [f"dave: {t}" for t in missed] + [f"dave: {t}" for t in after]
    expect(page.locator("#messages .line.message")).to_have_count(len(expected))
    expect(page.locator("#messages .line.message").last).to_contain_text("after 1")
    assert line_texts(page) == expected
    # What was missed is history (dimmed), and sits above "You rejoined"; the rest is live.
    kinds = page.locator("#messages > li").evaluate_all(
        "els => els.map(el => el.classList.contains('history') ? 'h' : el.textContent.includes('You rejoined') ? 'r' "
        ": el.classList.contains('message') ? 'm' : '')")
    kinds = [k for k in kinds if k]
    assert kinds == ["m"] * 11 + ["h"] * 150 + ["r"] + ["m"] * 2
    assert page.errors == []


# A page with a stand-in connection: what it sends, and what it does with each answer.
PAGING_SCRIPT = """async () => {
    const { parseLine } = await import("/static/irc.js");
    const { Chat } = await import("/static/chat.js");
    const { View } = await import("/static/view.js");
    const sent = [];
    const caps = new Set(["batch", "draft/chathistory", "message-tags", "server-time", "echo-message"]);
    const conn = { nick: "tester", caps, isOpen: true, registered: true,
                   send: (...params) => { sent.push(params.join(" ")); return true; } };
    document.getElementById("join").hidden = true;
    document.getElementById("chat").hidden = false;
    const chat = new Chat(conn, new View(document), document);
    const feed = (...lines) => lines.forEach((line) => chat.handle(parseLine(line)));
    const stamp = (i) => new Date(Date.UTC(2024, 4, 1, 10, 0, i)).toISOString();
    const row = (batch, id, i, text, cmd = "PRIVMSG") =>
        `@batch=${batch};time=${stamp(i)};msgid=${id} :old!o@h ${cmd} #lobby :${text}`;
    const texts = () => [...document.querySelectorAll("#messages .line:not(.history-marker) .body")]
        .map((body) => body.textContent);
    const marker = () => document.querySelector("#messages .history-marker")?.textContent ?? null;
    const steps = {};
    const ping = () => sent.find((line) => line.startsWith("PING ")).split(" ")[1];

    feed(":srv 001 tester :Welcome", ":tester!t@h JOIN #lobby");
    steps.joinSent = [...sent];
    feed("BATCH +r chathistory #lobby", row("r", "r1", 10, "replayed one"),
         row("r", "r2", 11, "old news, tester"), row("r", "t1", 12, "an old topic", "TOPIC"), "BATCH -r");
    steps.beforePong = [...sent];
    feed(`:srv PONG srv ${ping()}`);
    steps.afterPong = [...sent];
    steps.loading = marker();
    feed("BATCH +o chathistory #lobby", row("o", "o1", 1, "oldest"), row("o", "o2", 2, "older"), "BATCH -o");
    steps.beginning = marker();
    feed("@time=2024-05-01T11:00:00.000Z;msgid=live1 :carol!c@h PRIVMSG #lobby :live, tester");
    steps.first = texts();
    steps.mentions = document.querySelectorAll("#messages .mention").length;
    steps.historyMentions = document.querySelectorAll("#messages .history.mention").length;
    steps.topic = document.getElementById("topic").textContent;
    // A room where nothing was said yet: a rejoin asks from the server's time of our JOIN.
    feed("@time=2024-05-01T09:00:00.000Z :tester!t@h JOIN #quiet");
    chat.activate("#lobby");

    // A reconnect: the join replay is held while AFTER pages come, and nothing shows twice.
    sent.length = 0;
    chat.onDisconnected();
    feed(":srv 001 tester :Welcome", ":tester!t@h JOIN #lobby");
    steps.rejoinSent = [...sent];
    const page = Array.from({ length: 100 }, (_, i) => row("a1", `n${i}`, 100 + i, `missed ${i}`));
    feed("BATCH +j chathistory #lobby", row("j", "live1", 60, "live, tester"), row("j", "n99", 199, "missed 99"),
         row("j", "n100", 200, "missed 100"), "BATCH -j");
    feed(`:srv PONG srv ${ping()}`);
    steps.rejoinPong = [...sent];
    feed("@time=2024-05-01T12:00:00.000Z :tester!t@h JOIN #quiet");
    steps.quietSent = sent.slice(steps.rejoinPong.length);
    feed("BATCH +a1 chathistory #lobby", ...page, "BATCH -a1");
    steps.secondAfter = sent.at(-1);
    feed("BATCH +a2 chathistory #lobby", row("a2", "n100", 200, "missed 100"), "BATCH -a2");
    steps.last = texts();
    steps.unread = chat.buffers.get("#lobby").unread;
    return steps;
}"""


def test_paging_requests_and_what_the_page_does_with_each_answer(new_page: PageFactory) -> None:
    """The page's history logic against a scripted server: exact requests, markers, order, no repeats."""
    steps = new_page().evaluate(PAGING_SCRIPT)
    # A chathistory client gets no replay from the server: the page asks for the latest lines itself.
    assert steps["joinSent"] == ["CHATHISTORY LATEST #lobby * 50", "PING lobby-history-1"]
    assert steps["beforePong"] == steps["joinSent"]  # nothing more is asked before the first page is in
    # Three lines don't fill the view, so the page asks for older ones at once.
    assert steps["afterPong"][-1] == "CHATHISTORY BEFORE #lobby msgid=r1 50"
    assert steps["loading"] == "loading…"
    assert steps["beginning"] == "beginning of the conversation"  # 2 lines < 50 asked
    assert steps["first"] == [
        "old: oldest", "old: older", "old: replayed one", "old: old news, tester", "old set the topic: an old topic",
        "You joined #lobby", "carol: live, tester",
    ]
    assert steps["mentions"] == 1 and steps["historyMentions"] == 0  # only the live line is a mention
    assert steps["topic"] == "No topic is set"  # an old topic change is told, not applied

    assert steps["rejoinSent"] == ["PING lobby-history-3", "CHATHISTORY AFTER #lobby msgid=live1 100"]
    assert steps["quietSent"] == ["PING lobby-history-4",
                                  "CHATHISTORY AFTER #quiet timestamp=2024-05-01T09:00:00.000Z 100"]
    assert steps["rejoinPong"] == steps["rejoinSent"]  # the beginning is still shown: nothing older to ask
    assert steps["secondAfter"] == "CHATHISTORY AFTER #lobby msgid=n99 100"
    last = steps["last"]
    assert last.count("old: missed 99") == 1 and last.count("old: missed 100") == 1
    assert last.count("carol: live, tester") == 1
    start = last.index("old: missed 0")
    assert last[start:start + 101] == [f"old: missed {i}" for i in range(101)]
    assert last[start + 101] == "You rejoined #lobby"
    assert steps["unread"] == 0
