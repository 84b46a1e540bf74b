"""Real terminal IRC clients (irssi, WeeChat, `lobby connect`) driven in tmux, as a person would.

Each client runs in a tmux server of its own (its own socket, `tmux -L NAME`), with
a throwaway home under pytest's tmp_path and a 200x50 screen. Tests type into it
with send_keys()/type_line() and read what a person would see with screen() and
wait_for(). Everything is loopback only; stop() kills the tmux server and the
client's process group, and the fixture calls it even when a test fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

TIMEOUT = 20.0
WIDTH, HEIGHT = 200, 50
REPO = Path(__file__).resolve().parent.parent


def require(*programs: str) -> None:
    """Skip when a program is missing, except on CI, where that is a failure."""
    missing = [p for p in programs if shutil.which(p) is None]
    if not missing:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{', '.join(missing)} missing, and real-client tests must run on CI (apt-get install them)")
    pytest.skip(f"not installed: {', '.join(missing)}")


class Terminal:
    """One program in its own tmux server: type into it, read its screen."""

    def __init__(self, name: str, home: Path, command: list[str], env: dict[str, str] | None = None) -> None:
        self.name = name
        self.home = home
        self.socket = f"lobby-{name}-{uuid.uuid4().hex[:10]}"
        self.target = "main:0.0"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "TERM": "screen",  # tmux's own; clients draw for it
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "TZ": "UTC",
            **(env or {}),
        }
        self.pid: int | None = None
        self.last_screen = ""
        shell_line = " ".join(shlex.quote(part) for part in command)
        self._tmux(
            "-f", "/dev/null", "new-session", "-d", "-x", str(WIDTH), "-y", str(HEIGHT), "-s", "main",
            # exec: the pane's process is the client itself, so its pid is the one to kill.
            f"exec {shell_line}",
        )
        self._tmux("set-option", "-t", "main", "remain-on-exit", "on")
        self.pid = int(self._tmux("display-message", "-p", "-t", self.target, "#{pane_pid}").strip())

    def _tmux(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args], env=self.env, capture_output=True, text=True, timeout=15,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    # -- typing ----------------------------------------------------------------------

    def send_keys(self, text: str) -> None:
        """Type text literally (no Enter)."""
        self._tmux("send-keys", "-t", self.target, "-l", text)

    def press(self, *keys: str) -> None:
        """Press named keys (Enter, Escape, C-c, ...)."""
        self._tmux("send-keys", "-t", self.target, *keys)

    def type_line(self, text: str) -> None:
        """Type a line and press Enter."""
        self.send_keys(text)
        time.sleep(0.05)  # let the client take the text before the Enter
        self.press("Enter")

    # -- reading ---------------------------------------------------------------------

    def screen(self) -> str:
        """The visible screen plus tmux's scrollback (lines joined where the terminal wrapped them)."""
        self.last_screen = self._tmux("capture-pane", "-p", "-J", "-t", self.target, "-S", "-200")
        return self.last_screen

    def wait_for(self, expected: str | re.Pattern[str] | Callable[[str], bool], timeout: float = TIMEOUT) -> str:
        """Poll the screen until expected (a regex, or a predicate on the text) holds; return the screen."""
        if callable(expected) and not isinstance(expected, re.Pattern):
            check = expected
            what = getattr(expected, "__name__", "condition")
        else:
            pattern = re.compile(expected) if isinstance(expected, str) else expected
            check = lambda text: pattern.search(text) is not None  # noqa: E731
            what = pattern.pattern
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if check(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: {what!r} not on screen within {timeout}s; screen:\n{text}")
            time.sleep(0.2)

    # -- ending ----------------------------------------------------------------------

    def alive(self) -> bool:
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self) -> None:
        """Kill the client (its whole process group) and the tmux server; wait until both are gone."""
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(os.getpgid(self.pid), signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        self._tmux("kill-server", check=False)
        deadline = time.monotonic() + 10
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not self.alive(), f"{self.name} (pid {self.pid}) is still running"


# -- the clients ------------------------------------------------------------------------

# Only settings irssi knows (an unknown one makes it ask "Remove unknown settings?" on the input line).
# show_server_time stays at its default (off), as most users have it.
IRSSI_CONFIG = """\
settings = {{
  core = {{
    real_name = "{nick} (irssi)";
    user_name = "{user}";
    nick = "{nick}";
    timestamp_format = "%H:%M:%S";
    settings_autosave = "no";
  }};
  "fe-common/core" = {{ window_auto_change = "yes"; }};
}};
"""


def irssi(home: Path, nick: str, address: tuple[str, int]) -> Terminal:
    """irssi as nick, connected to address, with a home of its own and nothing from outside."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config").write_text(IRSSI_CONFIG.format(nick=nick, user=nick.lower()[:9]))
    host, port = address
    return Terminal(
        f"irssi-{nick}", home,
        ["irssi", f"--home={home}", f"--config={home / 'config'}", "-n", nick, "-c", host, "-p", str(port)],
    )


def weechat(home: Path, nick: str, address: tuple[str, int]) -> Terminal:
    """WeeChat as nick with only the plugins a chat needs (no scripts, spelling, relay or downloads)."""
    home.mkdir(parents=True, exist_ok=True)
    host, port = address
    commands = ";".join([
        "/set weechat.look.save_config_on_exit off",
        "/set weechat.look.color_real_white off",
        "/set weechat.look.buffer_time_format %H:%M:%S",
        "/set weechat.startup.display_logo off",
        "/set weechat.startup.display_version off",
        "/set irc.look.buffer_switch_join on",
        "/set irc.look.buffer_switch_autojoin on",
        f"/server add lobby {host}/{port} -notls",
        f"/set irc.server.lobby.nicks {nick}",
        f"/set irc.server.lobby.username {nick.lower()[:9]}",
        f"/set irc.server.lobby.realname {nick}",
        "/set irc.server.lobby.autoconnect on",
        "/connect lobby",
    ])
    return Terminal(
        f"weechat-{nick}", home,
        ["weechat", "--dir", str(home), "--no-script", "--plugins", "irc,buflist,alias,charset", "-r", commands],
    )


def lobby_connect(home: Path, nick: str, address: tuple[str, int]) -> Terminal:
    """The project's own terminal client, `lobby connect`."""
    home.mkdir(parents=True, exist_ok=True)
    host, port = address
    return Terminal(
        f"lobby-{nick}", home,
        [sys.executable, "-m", "backend.cli", "connect", "--host", host, "--port", str(port), "--name", nick],
        env={"PYTHONPATH": str(REPO)},
    )


@pytest.fixture
def terminals(tmp_path: Path) -> Iterator[Callable[..., Terminal]]:
    """A factory: terminals(kind, nick, address) starts irssi, weechat or lobby in tmux; all stopped after."""
    started: list[Terminal] = []
    kinds = {"irssi": irssi, "weechat": weechat, "lobby": lobby_connect}

    def factory(kind: str, nick: str, address: tuple[str, int]) -> Terminal:
        require("tmux", *([kind] if kind != "lobby" else []))
        terminal = kinds[kind](tmp_path / f"{kind}-{nick}", nick, address)
        started.append(terminal)
        return terminal

    yield factory
    errors = []
    for terminal in started:
        try:
            terminal.stop()
        except AssertionError as err:
            errors.append(str(err))
    assert not errors, errors
