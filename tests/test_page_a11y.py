"""An automated accessibility check of the page, in Chromium.

On a desktop and a phone-sized layout, light and dark, with each dialog and menu
opened in turn, Chromium's own accessibility tree (over the DevTools protocol) must
give every control a name, dialogs must be modal and labelled, the log and the
status must be live regions, buttons must be big enough to hit; and Tab, pressed through the page and through each
dialog, must land only on visible elements that show a focus indicator.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.ircclient import IrcClient
from tests.pagehelpers import PHONE, IrcFactory, PageFactory, expect, joined, name_button, say

pytest_plugins = ["tests.webfixtures"]
pytestmark = pytest.mark.browser

# Roles a person operates (or that hold a whole part of the page): each needs an accessible name.
# Forms, statuses and alerts may go unnamed (ARIA makes a form a landmark only once it has one).
NAMED_ROLES = {
    "button", "link", "textbox", "searchbox", "combobox", "checkbox", "radio", "spinbutton", "slider",
    "switch", "menuitem", "menuitemcheckbox", "menuitemradio", "menu", "listbox", "option", "tab",
    "dialog", "alertdialog", "image", "img", "log", "navigation", "complementary", "DisclosureTriangle",
}

LAYOUTS = {
    "desktop-light": {"viewport": {"width": 1280, "height": 800}, "color_scheme": "light"},
    "desktop-dark": {"viewport": {"width": 1280, "height": 800}, "color_scheme": "dark"},
    "phone-light": {**PHONE, "color_scheme": "light"},
    "phone-dark": PHONE,
}

# What each focused element looks like, and whether it shows where focus is.
FOCUS_PROBE = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    const outlined = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
    const shadowed = style.boxShadow !== "none";
    const inView = box.width > 0 && box.height > 0 && box.bottom > 0 && box.right > 0 &&
        box.top < innerHeight && box.left < innerWidth;
    const label = el.getAttribute("aria-label") || el.textContent.trim().slice(0, 40) || el.id || el.name || "";
    return { what: `${el.tagName.toLowerCase()}#${el.id} ${label}`.trim(), indicated: outlined || shadowed,
             visible: inView && style.visibility !== "hidden", focusVisible: el.matches(":focus-visible") };
}"""

# The page's own promises: modal, labelled dialogs; live regions; alt on images.
DOM_CHECKS = """() => {
    const problems = [];
    const text = (id) => (document.getElementById(id)?.textContent ?? "").trim();
    for (const dialog of document.querySelectorAll("dialog[open]")) {
        if (!dialog.matches(":modal")) problems.push(`dialog#${dialog.id} is not modal`);
        const ids = (dialog.getAttribute("aria-labelledby") ?? "").split(/\\s+/).filter(Boolean);
        if (!ids.map(text).join("") && !dialog.getAttribute("aria-label")) {
            problems.push(`dialog#${dialog.id} has no label`);
        }
    }
    const log = document.getElementById("messages");
    if (log.getAttribute("role") !== "log" || log.getAttribute("aria-live") !== "polite") {
        problems.push("the messages are not a polite live log");
    }
    if (document.getElementById("status").getAttribute("role") !== "status") problems.push("#status is not a status");
    for (const img of document.querySelectorAll("img:not([alt])")) problems.push(`img ${img.src} has no alt`);
    const menu = document.getElementById("name-menu");
    if (!menu.closest("[hidden]") && !menu.getAttribute("aria-label")) problems.push("menu without a label");
    return problems;
}"""


# Buttons and menu items too small to hit with a finger (WCAG 2.5.8: at least 24 CSS px square);
# links inside a sentence and inputs inside their (larger) label are exempt, as the rule says.
SMALL_TARGETS = """() => [...document.querySelectorAll("button, summary, select, textarea, input, [role=menuitem]")]
    .filter((el) => el.getClientRects().length && !el.closest("label"))
    .map((el) => ({ el, box: el.getBoundingClientRect() }))
    .filter(({ box }) => box.width < 24 || box.height < 24)
    .map(({ el, box }) => `${el.tagName.toLowerCase()}.${el.className} too small: ${box.width}x${box.height}`)"""


def unnamed(page: Any) -> list[str]:
    """Controls that Chromium's accessibility tree leaves without a name (described by tag, id and class)."""
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("DOM.getDocument", {"depth": 0})
        problems = []
        for node in cdp.send("Accessibility.getFullAXTree")["nodes"]:
            if node.get("ignored"):
                continue
            role = str(node.get("role", {}).get("value", ""))
            name = str(node.get("name", {}).get("value", "")).strip()
            if role not in NAMED_ROLES or name:
                continue
            where = "?"
            if "backendDOMNodeId" in node:
                described = cdp.send("DOM.describeNode", {"backendNodeId": node["backendDOMNodeId"]})["node"]
                attrs = described.get("attributes", [])
                pairs = dict(zip(attrs[::2], attrs[1::2], strict=False))
                where = f"<{described['nodeName'].lower()} id={pairs.get('id', '')} class={pairs.get('class', '')}>"
            problems.append(f"{role} without a name: {where}")
        return problems
    finally:
        cdp.detach()


def check_names(page: Any, state: str) -> None:
    """Every control has a name, and the page keeps its own promises (dialogs, live regions, alt)."""
    problems = unnamed(page) + page.evaluate(DOM_CHECKS) + page.evaluate(SMALL_TARGETS)
    assert problems == [], f"{state}: {problems}"


def tab_through(page: Any, state: str, presses: int = 40) -> list[str]:
    """Press Tab many times: each stop must be visible and show focus. Returns where focus went."""
    stops = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        focus = page.evaluate(FOCUS_PROBE)
        if focus is None:
            continue  # out of the page, into the browser's own controls, and back
        assert focus["visible"], f"{state}: focus on an element that is not visible: {focus['what']}"
        assert focus["focusVisible"] and focus["indicated"], f"{state}: no focus indicator on {focus['what']}"
        stops.append(focus["what"])
    assert stops, f"{state}: Tab reached nothing"
    return stops


def furnish(page: Any, carol: IrcClient) -> None:
    """A room of our own (we are its operator), with someone in it, a link, a burst of joins, and a private chat."""
    say(page, "/join #a11y")
    expect(page.locator("#room-title")).to_have_text("#a11y")
    expect(page.locator("#room-settings-button")).to_be_visible()
    carol.send("JOIN #a11y")
    expect(page.locator("#users")).to_contain_text("carol")
    carol.send("PRIVMSG #a11y :see https://example.org/docs for details")
    expect(page.locator("#messages a")).to_have_count(1)
    carol.send("PRIVMSG tester :a private word")
    expect(page.locator("#queries")).to_contain_text("carol")
    say(page, "/help")
    expect(page.locator(".help-card")).to_be_visible()


def close_with_escape(page: Any, dialog: str) -> None:
    page.keyboard.press("Escape")
    expect(page.locator(dialog)).to_be_hidden()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_control_is_named_and_focus_is_always_visible(
    new_page: PageFactory, irc_user: IrcFactory, layout: str
) -> None:
    carol = irc_user("carol")
    page = new_page(**LAYOUTS[layout])
    # Before joining: the join form.
    check_names(page, f"{layout} join form")
    tab_through(page, f"{layout} join form", presses=8)
    joined(page, "tester")
    furnish(page, carol)
    check_names(page, f"{layout} chat")
    stops = tab_through(page, f"{layout} chat")
    assert any("message" in stop for stop in stops), stops  # the composer is in the Tab order

    # Each dialog in turn: named controls inside, modal and labelled, focus visible within.
    for opener, dialog in [
        ("#settings-button", "#settings"),
        ("#browse-rooms", "#room-browser"),
        ("#room-settings-button", "#room-settings"),
    ]:
        page.locator(opener).click()
        expect(page.locator(dialog)).to_be_visible()
        check_names(page, f"{layout} {dialog}")
        tab_through(page, f"{layout} {dialog}", presses=15)
        close_with_escape(page, dialog)

    # The search panel (with a result), and the emoji picker of the message box.
    page.locator("#search-button").click()
    expect(page.locator("#search")).to_be_visible()
    page.locator("#search-input").fill("details")
    page.locator("#search-input").press("Enter")
    expect(page.locator("#search-status")).to_contain_text(re.compile(r"found|Nothing"))
    check_names(page, f"{layout} #search")
    tab_through(page, f"{layout} #search", presses=8)
    page.locator("#search-input").focus()
    close_with_escape(page, "#search")
    page.get_by_role("button", name="Insert emoji").click()
    expect(page.locator("#emoji-grid")).to_be_visible()
    check_names(page, f"{layout} emoji picker")
    close_with_escape(page, "#emoji-popup")
    expect(page.get_by_role("button", name="Insert emoji")).to_be_focused()
    # A line's Reply and React are reached with Tab, shown while focus is in them, and named.
    react = page.get_by_role("button", name="React to carol’s message").first
    react.focus()
    expect(react).to_be_visible()
    react.press("Enter")
    expect(page.locator("#emoji-grid")).to_be_visible()
    check_names(page, f"{layout} reaction picker")
    close_with_escape(page, "#emoji-popup")

    # The people panel (a drawer on a phone), the name menu, and the reason dialog it leads to.
    if layout.startswith("phone"):
        page.locator("#people-toggle").click()
        expect(page.locator("#people")).to_be_visible()
        check_names(page, f"{layout} people panel")
    name_button(page, "carol").click()
    expect(page.locator("#name-menu")).to_be_visible()
    check_names(page, f"{layout} name menu")
    page.locator("#name-menu").get_by_role("menuitem", name="Kick…").click()
    expect(page.locator("#reason-dialog")).to_be_visible()
    check_names(page, f"{layout} reason dialog")
    tab_through(page, f"{layout} reason dialog", presses=6)
    close_with_escape(page, "#reason-dialog")
    assert page.errors == []
