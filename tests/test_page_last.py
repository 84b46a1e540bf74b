"""Where you left off, and who someone is (issue 17, items 3 and 5).

Debian's Chromium driven by Playwright against the real bridge and chat server, in
the style of tests/test_page_daily.py: waits are locators and expect(), never sleeps.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest

from tests.pagehelpers import IrcFactory, PageFactory, back_in, expect, joined, name_button, say

pytest_plugins = ["tests.webfixtures"]
pytestmark = pytest.mark.browser



def log(page: Any) -> Any:
    return page.get_by_role("log")


# -- item 3: new since you were last here ---------------------------------------------------


def test_a_divider_shows_above_exactly_the_lines_said_since_the_room_was_last_read(
    new_page: PageFactory, irc_user: IrcFactory, web: Any
) -> None:
    bob = irc_user("bob")
    page = new_page()
    joined(page, "alice")
    bob.send("PRIVMSG #lobby :read this one")
    expect(log(page)).to_contain_text("read this one")
    divider = page.get_by_role("separator").filter(has_text="new since you were last here")
    expect(divider).to_have_count(0)  # read as it came: nothing is new

    page.goto("about:blank")  # away; what is said now is new when alice comes back
    bob.expect(r" QUIT ")
    bob.send("PRIVMSG #lobby :new one")
    bob.send("PRIVMSG #lobby :new two")
    page.goto(web.url)
    back_in(page, "alice")
    expect(log(page)).to_contain_text("new two")
    expect(divider).to_have_count(1)
    order = page.locator("#messages > li").evaluate_all(
        "els => els.map(el => el.classList.contains('new-divider') ? '--' : el.textContent)")
    cut = order.index("--")
    assert any("read this one" in line for line in order[:cut])
    new_lines = [line for line in order[cut + 1:] if "new one" in line or "new two" in line]
    assert len(new_lines) == 2 and not any("new" in line for line in order[:cut] if "bob" in line)

    # Read now: after another reload nothing is new, and a line said while reading gets no divider.
    page.reload()
    back_in(page, "alice")
    expect(log(page)).to_contain_text("new two")
    bob.send("PRIVMSG #lobby :said while you read")
    expect(log(page)).to_contain_text("said while you read")
    expect(divider).to_have_count(0)
    assert page.errors == []


# -- item 5: details in the name menu ------------------------------------------------------


def test_the_name_menu_shows_whois_details_of_an_away_terminal_user(
    new_page: PageFactory, irc_user: IrcFactory
) -> None:
    bob = irc_user("bob")
    bob.send("JOIN #dev")
    bob.send("JOIN #other")
    bob.expect(r" 366 bob #other ")
    bob.send("AWAY :gone fishing")
    bob.expect(r" 306 ")
    page = new_page()
    joined(page, "alice")
    say(page, "/join #dev")
    expect(page.locator("#users")).to_contain_text("bob")

    name_button(page, "bob").click()
    menu = page.get_by_role("menu", name="Actions for bob")
    expect(menu.get_by_role("menuitem", name="Send a private message")).to_be_focused()
    details = page.get_by_role("region", name="Details for bob")
    expect(details).to_have_attribute("aria-busy", "false")

    def detail(label: str) -> Any:
        return details.locator("dt", has_text=re.compile(f"^{label}$")).locator("+ dd")

    expect(detail("Real name")).to_have_text("bob Test")
    expect(detail("Away")).to_have_text("gone fishing")
    expect(detail("Idle")).to_have_text(re.compile(r"^(under a minute|\d+ minutes?)$"))
    expect(detail("Connected since")).to_contain_text(str(datetime.date.today().year))
    expect(detail("Rooms you share")).to_have_text("#lobby, #dev")
    # The menu's actions are unchanged, and the details describe the menu for screen readers.
    expect(menu.get_by_role("menuitem")).to_have_count(2)
    assert menu.evaluate("el => document.getElementById(el.getAttribute('aria-describedby')).textContent") \
        .count("gone fishing") == 1
    # The WHOIS was quiet: the log tells nothing of it.
    expect(log(page)).not_to_contain_text("is away")

    page.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    expect(details).to_be_hidden()
    expect(name_button(page, "bob")).to_be_focused()
    assert page.errors == []


def test_the_whois_model_reads_the_replies_without_a_dom(new_page: PageFactory) -> None:
    page = new_page()
    got = page.evaluate("""async () => {
        const w = await import("/static/whois.js");
        const { fold } = await import("/static/irc.js");
        let d = w.emptyWhois("Bob");
        d = w.whoisReply(d, "311", ["me", "Bob", "bob", "host", "*", "Bob Smith"]);
        d = w.whoisReply(d, "319", ["me", "Bob", "@#Dev +#lobby #x"]);
        d = w.whoisReply(d, "317", ["me", "Bob", "3725", "1700000000", "seconds idle, signon time"]);
        d = w.whoisReply(d, "312", ["me", "Bob", "irc.example", "net"]);
        const lines = w.detailLines(d, ["#lobby", "#dev", "#mine"], fold, (date) => String(date.getTime()));
        return {
            lines,
            idle: [0, 59, 60, 7200, 90061].map(w.idleText),
            away: w.detailLines(w.whoisReply(w.emptyWhois("c"), "301", ["me", "c", ""]), [], fold),
        };
    }""")
    assert got["lines"] == [
        {"label": "Real name", "value": "Bob Smith"},
        {"label": "Connected since", "value": "1700000000000"},
        {"label": "Idle", "value": "1 hour 2 minutes"},
        {"label": "Rooms you share", "value": "#lobby, #dev"},
    ]
    assert got["idle"] == ["under a minute", "under a minute", "1 minute", "2 hours", "1 day 1 hour"]
    assert got["away"] == [{"label": "Away", "value": "yes"}, {"label": "Rooms you share", "value": "none"}]
