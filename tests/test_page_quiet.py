"""The page's quieter log, its settings and its notifications (issue 17, items 6, 8 and 4).

Debian's Chromium driven by Playwright against the real bridge and chat server, in
the style of tests/test_page_daily.py: waits are locators and expect(), never sleeps.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.pagehelpers import PHONE, IrcFactory, PageFactory, back_in, expect, joined

pytest_plugins = ["tests.webfixtures"]
pytestmark = pytest.mark.browser

LIGHT = {"color_scheme": "light"}

# A stand-in for the browser's Notification API that records what the page does with it:
# how often permission was asked, and each notification shown. The answer to the
# permission request lasts for the tab (sessionStorage), as a browser's would.
FAKE_NOTIFICATIONS = """
(() => {
  window.__asked = 0;
  window.__shown = [];
  class FakeNotification extends EventTarget {
    static get permission() { return sessionStorage.getItem("fake-permission") ?? "default"; }
    static async requestPermission() {
      window.__asked += 1;
      sessionStorage.setItem("fake-permission", "granted");
      return "granted";
    }
    constructor(title, options) {
      super();
      window.__shown.push({ title, body: options.body });
      document.documentElement.dataset.shown = String(window.__shown.length);
    }
    close() {}
  }
  window.Notification = FakeNotification;
  // The tab's visibility, as the test says (window.__hidden).
  Object.defineProperty(Document.prototype, "hidden", { get() { return Boolean(window.__hidden); } });
  Object.defineProperty(Document.prototype, "visibilityState", {
    get() { return window.__hidden ? "hidden" : "visible"; },
  });
})();
"""


def log(page: Any) -> Any:
    return page.get_by_role("log")


def open_settings(page: Any) -> Any:
    page.get_by_role("button", name="Settings").click()
    dialog = page.get_by_role("dialog", name="Settings")
    expect(dialog).to_be_visible()
    return dialog


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    def luminance(rgb: tuple[int, int, int]) -> float:
        def channel(c: int) -> float:
            s = c / 255
            return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

        r, g, b = (channel(c) for c in rgb)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


# Each name of the wider palette as the page paints it, and the panel behind it, as sRGB
# (a canvas converts whatever colour syntax the stylesheet uses).
PAINTED = """() => {
    const canvas = document.createElement("canvas");
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    const rgb = (color) => {
        ctx.clearRect(0, 0, 1, 1);
        ctx.fillStyle = color;
        ctx.fillRect(0, 0, 1, 1);
        return [...ctx.getImageData(0, 0, 1, 1).data.slice(0, 3)];
    };
    const probe = document.createElement("span");
    probe.className = "nick";
    document.getElementById("users").append(probe);
    const out = [];
    for (let hue = 0; hue < 360; hue += 20) {
        probe.style.setProperty("--nick-hue", String(hue));
        out.push(rgb(getComputedStyle(probe).color));
    }
    probe.remove();
    // What is behind the log: the nearest box with a background of its own.
    let box = document.getElementById("messages");
    while (box && getComputedStyle(box).backgroundColor === "rgba(0, 0, 0, 0)") box = box.parentElement;
    return { names: out, panel: rgb(getComputedStyle(box ?? document.body).backgroundColor) };
}"""


# -- 1. less noise --------------------------------------------------------------------


def test_a_burst_of_comings_and_goings_is_one_quiet_line_that_opens_and_can_be_hidden(
    new_page: PageFactory, irc_user: IrcFactory
) -> None:
    page = new_page(**LIGHT)
    joined(page, "alice")
    carol = irc_user("carol")
    dave = irc_user("dave")
    erin = irc_user("erin")
    expect(page.locator("#users")).to_contain_text("erin")
    dave.send("PART #lobby :errand")
    erin.send("QUIT :bye")
    carol.send("NICK carla")
    churn = page.locator(".line.churn")
    expect(churn).to_have_count(1)
    summary = churn.locator("summary")
    expect(summary).to_have_text("3 joined, 2 left, 1 changed name")
    # Who did what is one keyboard press away.
    expect(churn.get_by_text("→ dave joined")).to_be_hidden()
    summary.focus()
    page.keyboard.press("Enter")
    expect(churn.get_by_text("→ dave joined")).to_be_visible()
    expect(churn).to_contain_text("← dave left (errand)")
    expect(churn).to_contain_text("← erin quit (Quit: bye)")
    expect(churn).to_contain_text("carol is now known as carla")

    # Something said ends the burst: the next join is a line of its own, told in full.
    carol.send("PRIVMSG #lobby :hello all")
    expect(log(page)).to_contain_text("hello all")
    irc_user("frank")
    expect(churn).to_have_count(2)
    expect(churn.last).to_have_text(re.compile(r"→ frank joined$"))

    # The settings can hide them all, at once and after a reload.
    dialog = open_settings(page)
    events = dialog.get_by_role("checkbox", name="Show joins, leaves and name changes")
    expect(events).to_be_checked()
    events.uncheck()
    expect(churn.first).to_be_hidden()
    expect(churn.last).to_be_hidden()
    expect(log(page).get_by_text("hello all")).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    page.reload()
    back_in(page, "alice")
    irc_user("gina")
    expect(page.locator("#users")).to_contain_text("gina")
    expect(page.locator(".line.churn")).to_have_count(1)
    expect(page.locator(".line.churn")).to_be_hidden()
    assert page.errors == []


def test_a_persons_messages_in_a_row_show_the_name_once_on_a_phone_in_dark(
    new_page: PageFactory, irc_user: IrcFactory
) -> None:
    bob = irc_user("bob")
    carol = irc_user("carol")
    page = new_page(**PHONE)
    joined(page, "alice")
    for text in ("one", "two", "three"):
        bob.send(f"PRIVMSG #lobby :{text}")
    expect(log(page)).to_contain_text("three")  # two connections: one at a time, in this order
    carol.send("PRIVMSG #lobby :carol cuts in")
    expect(log(page)).to_contain_text("carol cuts in")
    bob.send("PRIVMSG #lobby :four")
    expect(log(page)).to_contain_text("four")
    lines = page.locator(".line.message")
    expect(lines).to_have_count(5)
    assert lines.evaluate_all("els => els.map(el => el.classList.contains('continued'))") == \
        [False, True, True, False, False]
    # The name is drawn once; later lines keep it for screen readers only, and are indented.
    first_name = lines.nth(0).locator(".nick")
    later_name = lines.nth(1).locator(".nick")
    expect(first_name).to_be_visible()
    assert later_name.evaluate("el => el.getBoundingClientRect().width") <= 1
    expect(later_name).to_have_text("bob")
    first_x = lines.nth(0).locator(".body").evaluate("el => el.getBoundingClientRect().left")
    text_x = lines.nth(1).locator(".body").evaluate("el => el.getBoundingClientRect().left")
    assert text_x == first_x  # the same column: the indent is inside the body
    indent = lines.nth(1).locator(".body").evaluate("el => parseFloat(getComputedStyle(el).paddingLeft)")
    assert indent > 0
    assert page.evaluate("document.documentElement.scrollWidth <= 390")
    assert page.errors == []


def test_more_name_colours_tell_bob_from_bot4_and_stay_readable_in_both_themes(
    new_page: PageFactory, irc_user: IrcFactory
) -> None:
    irc_user("bob")
    irc_user("bot4")
    page = new_page(**LIGHT)
    joined(page, "alice")
    users = page.locator("#users")
    expect(users).to_contain_text("bot4")

    def colour(nick: str) -> str:
        # One evaluate over the whole list: it is redrawn as replies arrive.
        colours = page.evaluate(
            "() => Object.fromEntries([...document.querySelectorAll('#users .nick')]"
            ".map(el => [el.textContent, getComputedStyle(el).color]))")
        return str(colours[nick])

    # By default the terminal client's eight colours, where these two look alike.
    assert colour("bob") == colour("bot4")
    dialog = open_settings(page)
    dialog.get_by_role("checkbox", name=re.compile("More name colours")).check()
    assert colour("bob") != colour("bot4")

    for theme in ("Light", "Dark"):
        dialog.get_by_role("radio", name=theme).check()
        painted = page.evaluate(PAINTED)
        assert len({tuple(c) for c in painted["names"]}) == 18, theme
        worst = min(contrast(tuple(c), tuple(painted["panel"])) for c in painted["names"])
        assert worst >= 4.5, (theme, worst, painted)

    page.reload()
    back_in(page, "alice")
    expect(page.locator("html")).to_have_attribute("data-wide-colors", "")
    assert colour("bob") != colour("bot4")
    assert page.errors == []


# -- 2. settings -------------------------------------------------------------------------


def test_settings_change_theme_clock_and_density_at_once_and_after_a_reload(
    new_page: PageFactory, irc_user: IrcFactory
) -> None:
    page = new_page(**LIGHT)
    joined(page, "alice")
    bob = irc_user("bob")
    bob.send("PRIVMSG #lobby :what time is it")
    line = log(page).locator(".line.message").last
    expect(line.locator(".time")).to_have_text(re.compile(r"^\d\d:\d\d"))
    light_bg = page.evaluate("getComputedStyle(document.body).backgroundColor")

    # By keyboard: Tab to the button, Enter opens, Escape closes and gives focus back.
    button = page.get_by_role("button", name="Settings")
    button.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Settings")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("radio", name="Same as the system")).to_be_checked()
    expect(dialog.get_by_role("radio", name=re.compile("browser's language"))).to_be_checked()
    dialog.get_by_role("radio", name=re.compile("24-hour")).check()
    expect(line.locator(".time")).to_have_text(re.compile(r"^\d\d:\d\d$"))
    dialog.get_by_role("radio", name="Dark").check()
    dark_bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert dark_bg != light_bg
    dialog.get_by_role("radio", name=re.compile("12-hour")).check()
    expect(line.locator(".time")).to_have_text(re.compile(r"^\d\d:\d\d\s?[AP]M$"))
    compact = dialog.get_by_role("checkbox", name=re.compile("^Compact"))
    padding = line.evaluate("el => getComputedStyle(el).paddingTop")
    compact.check()
    assert line.evaluate("el => getComputedStyle(el).paddingTop") != padding
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(button).to_be_focused()

    page.reload()
    back_in(page, "alice")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == dark_bg
    bob.send("PRIVMSG #lobby :and now")
    expect(log(page).locator(".line.message").last.locator(".time")).to_have_text(re.compile(r"[AP]M$"))
    expect(page.locator("html")).to_have_attribute("data-compact", "")
    dialog = open_settings(page)
    expect(dialog.get_by_role("radio", name="Dark")).to_be_checked()
    expect(dialog.get_by_role("checkbox", name=re.compile("^Compact"))).to_be_checked()
    # Back to the system's choice: this context is light.
    dialog.get_by_role("radio", name="Same as the system").check()
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == light_bg
    assert page.errors == []


# -- 3. notifications ----------------------------------------------------------------------


def test_notifications_ask_only_on_a_click_and_follow_the_per_room_switch(
    new_page: PageFactory, irc_user: IrcFactory
) -> None:
    bob = irc_user("bob")
    page = new_page(**LIGHT)
    page.context.add_init_script(FAKE_NOTIFICATIONS)
    page.reload()
    joined(page, "alice")
    assert page.evaluate("window.__asked") == 0  # never on load

    dialog = open_settings(page)
    expect(dialog.get_by_role("status")).to_have_text(re.compile("permission first"))
    dialog.get_by_role("button", name="Allow desktop notifications").click()
    expect(dialog.get_by_role("status")).to_have_text(re.compile("allows notifications"))
    assert page.evaluate("window.__asked") == 1
    expect(dialog.get_by_role("checkbox", name=re.compile("^Notify me of mentions and private"))).to_be_checked()
    room_switch = dialog.get_by_role("checkbox", name="Notify me of mentions in #lobby")
    expect(room_switch).to_be_checked()
    room_switch.uncheck()
    dialog.get_by_role("checkbox", name=re.compile("short sound")).check()
    page.keyboard.press("Escape")

    # The switch is kept, and a mention in that room stays quiet; a private message does not.
    page.reload()
    back_in(page, "alice")
    assert page.evaluate("window.__asked") == 0
    dialog = open_settings(page)
    expect(dialog.get_by_role("checkbox", name="Notify me of mentions in #lobby")).not_to_be_checked()
    expect(dialog.get_by_role("checkbox", name=re.compile("short sound"))).to_be_checked()
    page.keyboard.press("Escape")
    page.evaluate("window.__hidden = true")
    bob.send("PRIVMSG #lobby :alice, quiet in here")
    bob.send("PRIVMSG alice :a private word")
    expect(page.locator("html")).to_have_attribute("data-shown", "1")
    expect(page.locator("#queries")).to_contain_text("bob")
    assert page.evaluate("window.__shown") == [{"title": "bob (private message)", "body": "a private word"}]

    # Switched back on: a mention there notifies, but not while the tab is in view.
    page.evaluate("window.__hidden = false")
    dialog = open_settings(page)
    dialog.get_by_role("checkbox", name="Notify me of mentions in #lobby").check()
    page.keyboard.press("Escape")
    bob.send("PRIVMSG #lobby :alice, seen it?")
    expect(log(page)).to_contain_text("seen it?")
    page.evaluate("window.__hidden = true")
    bob.send("PRIVMSG #lobby :alice, now?")
    expect(page.locator("html")).to_have_attribute("data-shown", "2")
    assert page.evaluate("window.__shown")[1] == {"title": "bob in #lobby", "body": "alice, now?"}
    assert page.errors == []


def test_a_real_browser_grant_shows_as_allowed_without_asking(new_page: PageFactory) -> None:
    page = new_page(**PHONE, permissions=["notifications"])
    joined(page, "alice")
    dialog = open_settings(page)
    expect(dialog.get_by_role("status")).to_have_text(re.compile("allows notifications"))
    expect(dialog.get_by_role("button", name="Allow desktop notifications")).to_be_hidden()
    assert page.evaluate("Notification.permission") == "granted"
    # The dialog fits the phone: it scrolls inside to its last control, never sideways.
    last = dialog.get_by_role("checkbox", name="Notify me of mentions in #lobby")
    last.focus()
    expect(last).to_be_in_viewport()
    assert page.evaluate("document.documentElement.scrollWidth <= 390 && innerWidth <= 390")
    assert page.errors == []


# -- the pure parts ---------------------------------------------------------------------------


def test_the_model_modules_summarise_group_and_keep_settings_without_a_dom(new_page: PageFactory) -> None:
    page = new_page()
    got = page.evaluate("""async () => {
        const quiet = await import("/static/quiet.js");
        const settings = await import("/static/settings.js");
        const notify = await import("/static/notify.js");
        const store = new Map();
        const storage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v) };
        store.set("lobby.settings", "{not json");
        const broken = settings.loadSettings(storage);
        const odd = { theme: "purple", clock: "12", compact: "yes", quietRooms: ["#a"] };
        store.set("lobby.settings", JSON.stringify(odd));
        const loaded = settings.loadSettings(storage);
        const on = { ...settings.DEFAULTS, notify: true, quietRooms: ["#quiet"] };
        const at = (min) => new Date(2026, 0, 1, 12, min);
        const said = (nick, min) => ({ kind: "message", nick, time: at(min) });
        const due = (kind, key, mention, hidden = true, s = on) =>
            notify.shouldNotify({ settings: s, hidden, buffer: { kind, key }, mention });
        const events = [["join", "a"], ["join", "B"], ["part", "a"], ["quit", "c"], ["join", "b"], ["nick", "d"]];
        return {
            summary: quiet.churnSummary(events.map(([kind, nick]) => ({ kind, nick }))),
            grouped: [
                quiet.continues(said("Bob", 0), said("bob", 4)),
                quiet.continues(said("bob", 0), said("bob", 6)),
                quiet.continues(said("bob", 0), said("bot4", 1)),
                quiet.continues(null, said("bob", 1)),
            ],
            broken, odd: loaded,
            roomOff: settings.withRoomQuiet(settings.DEFAULTS, "#x", true).quietRooms,
            roomOn: settings.withRoomQuiet({ ...settings.DEFAULTS, quietRooms: ["#x"] }, "#x", false).quietRooms,
            notify: [
                due("room", "#a", true), due("room", "#a", true, false), due("room", "#a", false),
                due("room", "#quiet", true), due("query", "bob", false),
                due("query", "bob", false, true, settings.DEFAULTS),
            ],
        };
    }""")
    assert got["summary"] == "2 joined, 2 left, 1 changed name"
    assert got["grouped"] == [True, False, False, False]
    assert got["broken"]["theme"] == "system" and got["broken"]["clock"] == "auto"
    assert (got["odd"]["theme"], got["odd"]["clock"], got["odd"]["compact"], got["odd"]["quietRooms"]) == \
        ("system", "12", False, ["#a"])
    assert got["roomOff"] == ["#x"] and got["roomOn"] == []
    assert got["notify"] == [True, False, False, False, True, False]
