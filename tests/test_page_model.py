"""The page's model (web/static/model.js) and how the views follow it, driven in Chromium.

The modules are imported into a served page (no JS test runner is needed): lines
are plain objects that can be found by msgid and updated, and updating one redraws
that line alone.
"""

from __future__ import annotations

import pytest

from tests.pagehelpers import PageFactory

pytest_plugins = ["tests.webfixtures"]
pytestmark = pytest.mark.browser

MODEL_SCRIPT = """async () => {
    const { Conversation, MAX_LINES, makeLine } = await import("/static/model.js");
    const { firstNewLine, newestMark } = await import("/static/lastread.js");
    const got = {};
    const room = new Conversation("#Dev", "room");
    got.key = room.key;
    const at = (s) => new Date(Date.UTC(2024, 0, 1, 10, 0, s));
    room.push(makeLine({ kind: "event", text: "You joined #Dev", time: at(0) }));
    room.push(makeLine({ kind: "message", nick: "bob", text: "one", msgid: "m1", time: at(1), tags: { msgid: "m1" } }));
    room.push(makeLine({ kind: "message", nick: "me", text: "two", msgid: "m2", time: at(2), self: true }));
    room.push(makeLine({ kind: "action", nick: "bob", text: "waves", msgid: "m3", time: at(3) }));
    got.found = room.findLine("m3").text;
    got.missing = room.findLine("nope");
    got.tags = room.findLine("m1").tags;
    got.edges = [room.edgeMsgid(false), room.edgeMsgid(true)];
    got.newest = newestMark(room.lines);
    // Our own line is never "new"; bob's action after m1 is.
    got.firstNew = firstNewLine(room.lines, { time: at(1).getTime(), msgid: "m1" })?.msgid;
    room.seen.add("m1");
    let dropped = null;
    for (let i = 0; i < MAX_LINES - 3; i += 1) {
        dropped = room.push(makeLine({ kind: "info", text: `i${i}` })) ?? dropped;
    }
    got.length = room.lines.length;
    got.dropped = dropped?.text;
    dropped = room.push(makeLine({ kind: "info", text: "more" }));
    got.droppedMsgid = dropped?.msgid;
    got.stillSeen = room.seen.has("m1");
    got.json = JSON.stringify(room.lines[0]).length > 0;  // plain data, no DOM
    return got;
}"""

VIEW_SCRIPT = """async () => {
    const { parseLine } = await import("/static/irc.js");
    const { Chat } = await import("/static/chat.js");
    const { View } = await import("/static/view.js");
    const conn = { nick: "tester", caps: new Set(["echo-message"]), isOpen: true, registered: true, send: () => true };
    document.getElementById("join").hidden = true;
    document.getElementById("chat").hidden = false;
    const chat = new Chat(conn, new View(document), document);
    const feed = (...lines) => lines.forEach((line) => chat.handle(parseLine(line)));
    feed(":srv 001 tester :Welcome", ":tester!t@h JOIN #lobby",
         "@msgid=a1 :bob!b@h PRIVMSG #lobby :first", "@msgid=a2;+draft/reply=a1 :carol!c@h PRIVMSG #lobby :second");
    const room = chat.buffers.get("#lobby");
    const li = (id) => document.querySelector(`#messages [data-msgid="${id}"]`);
    const firstBefore = li("a1");
    const secondBefore = li("a2");
    const line = chat.findLine(room, "a2");
    const got = { kind: line.kind, nick: line.nick, reply: line.tags["+draft/reply"] };
    chat.updateLine(room, line, { text: "second, edited" });
    got.redrawn = li("a2") !== secondBefore && li("a2").textContent.includes("second, edited");
    got.othersKept = li("a1") === firstBefore;
    got.order = [...document.querySelectorAll("#messages [data-msgid]")].map((el) => el.dataset.msgid);
    // A line of a conversation not shown is drawn from the model when that one opens.
    feed(":tester!t@h JOIN #side", "@msgid=s1 :bob!b@h PRIVMSG #side :aside");
    chat.activate("#lobby");
    feed(":bob!b@h REDACT #side s1");
    got.sideModel = chat.buffers.get("#side").findLine("s1").redacted;
    chat.activate("#side");
    got.sideShown = li("s1").textContent.includes("message deleted") && li("s1").classList.contains("redacted");
    return got;
}"""


def test_lines_are_plain_objects_found_by_msgid_and_trimmed(new_page: PageFactory) -> None:
    got = new_page().evaluate(MODEL_SCRIPT)
    assert got["key"] == "#dev"
    assert got["found"] == "waves" and got["missing"] is None
    assert got["tags"] == {"msgid": "m1"}
    assert got["edges"] == ["m1", "m3"]
    assert got["newest"]["msgid"] == "m3"
    assert got["firstNew"] == "m3"
    assert got["length"] == 1000 and got["dropped"] == "You joined #Dev"  # the oldest line goes first
    assert got["droppedMsgid"] == "m1" and not got["stillSeen"]  # gone from the page: history may bring it back
    assert got["json"]


def test_updating_one_line_redraws_that_line_only(new_page: PageFactory) -> None:
    page = new_page()
    got = page.evaluate(VIEW_SCRIPT)
    assert got["kind"] == "message" and got["nick"] == "carol"
    assert got["reply"] == "a1"  # the tags stay on the line, for replies to come
    assert got["redrawn"] and got["othersKept"]
    assert got["order"] == ["a1", "a2"]
    assert got["sideModel"] == "message deleted"
    assert got["sideShown"]
    assert page.errors == []
