"""The page's everyday comforts (issue 17): private conversations, finding rooms, away, small things.

Debian's Chromium driven by Playwright against the real bridge and chat server, in
the style of tests/test_page.py: waits are locators and expect(), never sleeps.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.pagehelpers import PHONE, IrcFactory, PageFactory, expect, joined, say

pytest_plugins = ["tests.webfixtures"]
pytestmark = pytest.mark.browser



def no_sideways_scroll(page: Any, width: int = 390) -> bool:
    """Nothing wider than the phone (a mobile layout viewport grows with what overflows: compare to the device)."""
    return bool(page.evaluate("(width) => document.documentElement.scrollWidth <= width && innerWidth <= width", width))


# -- 1. private conversations --------------------------------------------------------


def test_private_conversations_are_listed_apart_show_presence_and_close(
    new_page: PageFactory, irc_user: IrcFactory
) -> None:
    carol = irc_user("carol")
    dave = irc_user("dave")
    page = new_page()
    joined(page, "alice")
    expect(page.locator("#queries-section")).to_be_hidden()

    carol.send("PRIVMSG alice :hi alice, a private word")
    queries = page.locator("#queries")
    expect(queries).to_contain_text("carol")
    expect(page.get_by_role("heading", name="Direct messages")).to_be_visible()
    expect(page.locator("#buffers")).not_to_contain_text("carol")  # rooms only up there
    queries.get_by_role("button", name=re.compile("^carol")).click()
    expect(page.locator("#room-title")).to_have_text("carol")
    expect(page.locator("#messages")).to_contain_text("hi alice, a private word")
    # Every private line is for us: none is highlighted as a mention.
    expect(page.locator(".line.mention")).to_have_count(0)
    # Not a room: the people panel doesn't say "In the room 2".
    expect(page.locator("#users-title")).to_have_text("In this conversation")
    expect(page.locator("#users")).to_contain_text("carol")
    # MONITOR says whether the partner is online; a quit leaves the conversation readable.
    expect(page.locator("#topic")).to_have_text("Private conversation · online")
    carol.send("QUIT :bye")
    expect(page.locator("#topic")).to_have_text("Private conversation · offline")
    expect(queries).to_contain_text("offline")
    expect(page.locator("#users .offline")).to_contain_text("carol")
    expect(page.locator("#messages")).to_contain_text("hi alice, a private word")
    expect(page.locator("#messages")).to_contain_text("carol quit")
    # A MONITORed partner who comes back is online again.
    irc_user("carol")
    expect(page.locator("#topic")).to_have_text("Private conversation · online")
    expect(page.locator("#messages")).to_contain_text("carol is online")

    # The × closes it, by keyboard too; the page goes back to a room.
    close = page.get_by_role("button", name="Close the conversation with carol")
    close.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#queries-section")).to_be_hidden()
    expect(page.locator("#room-title")).to_have_text("#lobby")

    # /close closes the open one.
    say(page, "/msg dave hello dave")
    assert dave.expect(r"PRIVMSG dave").params == ("dave", "hello dave")
    expect(page.locator("#room-title")).to_have_text("dave")
    expect(queries).to_contain_text("dave")
    say(page, "/close")
    expect(page.locator("#queries-section")).to_be_hidden()
    expect(page.locator("#room-title")).to_have_text("#lobby")
    assert page.errors == []


def test_private_conversations_on_a_phone_in_the_dark(new_page: PageFactory, irc_user: IrcFactory) -> None:
    carol = irc_user("carol")
    page = new_page(**PHONE)
    joined(page, "alice")
    carol.send("PRIVMSG alice :psst")
    irc_user("dave").send("PRIVMSG alice :and me")
    irc_user("erin").send("PRIVMSG alice :me too")
    close = page.get_by_role("button", name="Close the conversation with carol")
    expect(close).to_be_visible()
    expect(page.locator("#queries .buffer-item")).to_have_count(3)  # more than fits: the strip scrolls
    expect(page.get_by_role("button", name="Browse rooms")).to_be_visible()
    assert no_sideways_scroll(page)
    close.click()
    expect(close).to_have_count(0)
    assert page.errors == []


# -- 2. finding rooms ----------------------------------------------------------------


def test_rooms_can_be_browsed_filtered_and_joined(new_page: PageFactory, irc_user: IrcFactory) -> None:
    carol = irc_user("carol")
    carol.send("JOIN #games")
    carol.send("TOPIC #games :board games on friday")
    carol.expect(r" TOPIC #games ")
    dave = irc_user("dave")
    dave.send("JOIN #music")
    dave.expect(r" 366 \S+ #music ")
    page = new_page()
    joined(page, "alice")

    page.get_by_role("button", name="Browse rooms").click()
    dialog = page.get_by_role("dialog", name="Browse rooms")
    expect(dialog).to_be_visible()
    expect(page.locator("#room-filter")).to_be_focused()
    games = dialog.get_by_role("button", name=re.compile(r"^#games"))
    expect(games).to_contain_text("board games on friday")
    expect(games).to_contain_text("1 person")
    expect(dialog.get_by_role("button", name=re.compile(r"^#lobby"))).to_contain_text("3 people")
    expect(dialog.locator(".room-entry")).to_have_count(3)
    page.locator("#room-filter").fill("board")
    expect(dialog.locator(".room-entry")).to_have_count(1)
    expect(page.locator("#room-list-status")).to_have_text("1 room")
    games.click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#room-title")).to_have_text("#games")
    expect(page.locator("#users")).to_contain_text("carol")
    expect(page.locator("#messages")).not_to_contain_text("You created")

    # /list opens it with a filter; Enter joins the first room shown; Escape closes it.
    say(page, "/list mus")
    expect(dialog).to_be_visible()
    expect(page.locator("#room-filter")).to_have_value("mus")
    expect(dialog.locator(".room-entry")).to_have_count(1)
    expect(dialog.locator(".room-entry")).to_contain_text("#music")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    say(page, "/list")
    expect(dialog.locator(".room-entry")).to_have_count(3)
    page.locator("#room-filter").fill("music")
    page.locator("#room-filter").press("Enter")
    expect(page.locator("#room-title")).to_have_text("#music")
    dave.expect(r":alice!\S+ JOIN #music")

    # A room that didn't exist says it was just made.
    say(page, "/join #brandnew")
    expect(page.locator("#room-title")).to_have_text("#brandnew")
    expect(page.locator("#messages")).to_contain_text("You created #brandnew")
    assert page.errors == []


def test_the_room_browser_fits_a_phone(new_page: PageFactory, irc_user: IrcFactory) -> None:
    irc_user("carol").send("JOIN #a-room-with-a-rather-long-name-for-a-phone")
    page = new_page(**PHONE)
    joined(page, "alice")
    page.get_by_role("button", name="Browse rooms").click()
    dialog = page.get_by_role("dialog", name="Browse rooms")
    expect(dialog.locator(".room-entry")).to_have_count(2)
    box = dialog.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert no_sideways_scroll(page)
    assert page.errors == []


# -- 7. away ---------------------------------------------------------------------------


def test_away_people_are_dimmed_with_their_reason(new_page: PageFactory, irc_user: IrcFactory) -> None:
    carol = irc_user("carol")
    carol.send("AWAY :at lunch")
    carol.expect(r" 306 ")
    dave = irc_user("dave")
    page = new_page()
    joined(page, "alice")

    # Away before we came: the WHO after joining finds them, a WHOIS their reason.
    away = page.locator("#users .user.away")
    expect(away).to_have_count(1)
    expect(away).to_contain_text("carol")
    expect(away).to_have_attribute("title", "away: at lunch")
    assert away.evaluate("el => Number(getComputedStyle(el).opacity)") < 1
    # None of that quiet asking shows in the conversation.
    expect(page.locator("#messages")).not_to_contain_text("End of the list")
    expect(page.locator("#messages")).not_to_contain_text("is away")

    # away-notify: going away and coming back while we watch.
    dave.send("AWAY :in a meeting")
    expect(page.locator("#users .user.away", has_text="dave")).to_have_attribute("title", "away: in a meeting")
    dave.send("AWAY")
    expect(page.locator("#users .user.away", has_text="dave")).to_have_count(0)
    carol.send("AWAY")
    expect(away).to_have_count(0)

    # Our own /away and /back.
    say(page, "/away brb, coffee")
    # The server's 306 has reached the page: the away is set before anyone asks.
    expect(page.locator("#messages")).to_contain_text("You are marked as away: brb, coffee")
    carol.send("WHOIS alice")
    assert carol.expect(r" 301 ").params[-1] == "brb, coffee"
    expect(page.locator("#users .user.self.away")).to_have_attribute("title", "away: brb, coffee")
    say(page, "/back")
    expect(page.locator("#messages")).to_contain_text("You are back")
    expect(page.locator("#users .user.away")).to_have_count(0)
    assert page.errors == []


# -- 8. small things ---------------------------------------------------------------------


def test_www_links_help_card_topic_and_a_refused_name(new_page: PageFactory, irc_user: IrcFactory) -> None:
    carol = irc_user("carol")
    carol.send("TOPIC #lobby :Plans for today")
    carol.expect(r" TOPIC #lobby ")
    page = new_page()

    # A refused name doesn't leave "joining…" up.
    page.locator("#name").fill("carol")
    page.locator("#name").press("Enter")
    expect(page.locator("#name-error")).to_contain_text("taken")
    expect(page.locator("#status")).not_to_have_text("joining…")
    joined(page, "alice")

    # www.… is a link, to https://, built as an element.
    carol.send("PRIVMSG #lobby :see www.example.org/page, and https://example.com too")
    link = page.locator("#messages a", has_text="www.example.org/page")
    expect(link).to_have_attribute("href", "https://www.example.org/page")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(page.locator("#messages a")).to_have_count(2)

    # /help is one grouped card, not a run of timestamped lines.
    say(page, "/help")
    card = page.locator(".help-card")
    expect(card).to_have_count(1)
    expect(card.get_by_role("heading", name="Rooms")).to_be_visible()
    expect(card).to_contain_text("/msg NAME TEXT")
    expect(card).to_contain_text("/away [REASON]")
    expect(page.locator("#messages > li", has_text=re.compile(r"/msg NAME.*/quit"))).to_have_count(1)
    expect(card.locator("time")).to_have_count(0)

    # /topic alone tells the topic as a line.
    say(page, "/topic")
    expect(page.locator(".line.info", has_text="Topic of #lobby")).to_contain_text("Plans for today")
    assert page.errors == []


# -- 3. where am I ---------------------------------------------------------------------


def test_new_messages_below_show_a_pill_that_jumps_to_them(new_page: PageFactory, irc_user: IrcFactory) -> None:
    carol = irc_user("carol")
    page = new_page(viewport={"width": 900, "height": 500})
    joined(page, "alice")
    for i in range(40):
        carol.send(f"PRIVMSG #lobby :filler line {i}")
    expect(page.locator("#messages")).to_contain_text("filler line 39")
    pill = page.locator("#jump-latest")
    expect(pill).to_be_hidden()
    page.locator("#messages").hover()
    page.mouse.wheel(0, -3000)
    expect(page.locator("#messages .line", has_text="filler line 5")).to_be_in_viewport()
    carol.send("PRIVMSG #lobby :news one")
    carol.send("PRIVMSG #lobby :news two")
    expect(pill).to_have_text("2 new messages — jump to latest")
    expect(page.locator("#messages .line", has_text="news two")).not_to_be_in_viewport()
    pill.focus()
    page.keyboard.press("Enter")
    expect(pill).to_be_hidden()
    expect(page.locator("#messages .line", has_text="news two")).to_be_in_viewport()
    assert page.errors == []
