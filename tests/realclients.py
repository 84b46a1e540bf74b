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
from collections.abc import Callable
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

    def __init__(
        self, name: str, home: Path, command: list[str], env: dict[str, str] | None = None,
        stuck_on: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        # Screen text meaning the client waits for an answer to a question of its own: fail at once.
        self.stuck_on = stuck_on
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
        self.pid: int | None = None  # the client's
        self.server_pid: int | None = None  # tmux's
        self.last_screen = ""
        shell_line = " ".join(shlex.quote(part) for part in command)
        try:
            self._tmux(
                "-f", "/dev/null", "new-session", "-d", "-x", str(WIDTH), "-y", str(HEIGHT), "-s", "main",
                # exec: the pane's process is the client itself, so its pid is the one to kill.
                f"exec {shell_line}",
            )
            # Keep the pane when the client exits, so that its last screen can still be read.
            self._tmux("set-option", "-t", "main", "remain-on-exit", "on")
            pids = self._tmux("display-message", "-p", "-t", self.target, "#{pane_pid} #{pid}").split()
            self.pid, self.server_pid = int(pids[0]), int(pids[1])
        except BaseException:
            self.stop()
            raise

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
            stuck = [question for question in self.stuck_on if question in text]
            if stuck or time.monotonic() > deadline:
                why = f"stuck on {stuck[0]!r}" if stuck else f"{what!r} not on screen within {timeout}s"
                raise AssertionError(f"{self.name}: {why}; screen:\n{compact(text)}")
            time.sleep(0.2)

    # -- ending ----------------------------------------------------------------------

    def alive(self, pid: int | None = None) -> bool:
        """Whether the client's process (or pid) still runs; a zombie waiting to be reaped does not."""
        pid = self.pid if pid is None else pid
        if pid is None:
            return False
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")

    def stop(self) -> None:
        """Kill the client (its whole process group) and the tmux server; wait until both are gone."""
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(os.getpgid(self.pid), signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._tmux("kill-server", check=False)
        pids = [pid for pid in (self.pid, self.server_pid) if pid is not None]
        for last_try in (False, True):
            deadline = time.monotonic() + 5
            while any(self.alive(pid) for pid in pids) and time.monotonic() < deadline:
                time.sleep(0.05)
            for pid in pids:
                if not last_try and self.alive(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)  # a tmux server that did not take kill-server
        running = [pid for pid in pids if self.alive(pid)]
        assert not running, f"{self.name}: processes still running: {running}"


def compact(screen: str) -> str:
    """screen without trailing blanks and without lines that hold nothing but blanks and bar borders."""
    lines = [line.rstrip() for line in screen.splitlines()]
    return "\n".join(line for line in lines if line.strip(" │"))


# -- the clients ------------------------------------------------------------------------

# Only settings irssi knows (an unknown one makes it ask "Remove unknown settings?" on the input line).
# show_server_time stays at its default (off), as most users have it. irssi paces what it sends
# (2.2 s a command past a burst), so a join takes ~15 s to sync; tests shorten the pause, not what is sent.
IRSSI_CONFIG = """\
settings = {{
  core = {{
    real_name = "{nick} (irssi)";
    user_name = "{user}";
    nick = "{nick}";
    timestamp_format = "%H:%M:%S";
    settings_autosave = "no";
  }};
  "irc/core" = {{ cmd_queue_speed = "{queue_speed}"; }};
  "fe-common/core" = {{ window_auto_change = "yes"; }};
}};
"""


def irssi(home: Path, nick: str, address: tuple[str, int]) -> Terminal:
    """irssi as nick, connected to address, with a home of its own and nothing from outside."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config").write_text(IRSSI_CONFIG.format(nick=nick, user=nick.lower()[:9], queue_speed="200msec"))
    host, port = address
    return Terminal(
        f"irssi-{nick}", home,
        ["irssi", f"--home={home}", f"--config={home / 'config'}", "-n", nick, "-c", host, "-p", str(port)],
        stuck_on=("Remove unknown settings from config file",),
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


KINDS: dict[str, Callable[[Path, str, tuple[str, int]], Terminal]] = {
    "irssi": irssi, "weechat": weechat, "lobby": lobby_connect,
}


class Terminals:
    """Starts irssi, WeeChat or `lobby connect` in tmux under one directory; stop_all() ends every one."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[Terminal] = []

    def __call__(self, kind: str, nick: str, address: tuple[str, int]) -> Terminal:
        require("tmux", *([kind] if kind != "lobby" else []))
        terminal = KINDS[kind](self.root / f"{kind}-{nick}", nick, address)
        self.started.append(terminal)
        return terminal

    def stop_all(self) -> None:
        """Stop every terminal (even when one fails to stop); fail if any process is left."""
        errors = []
        for terminal in self.started:
            try:
                terminal.stop()
            except (AssertionError, OSError, RuntimeError, subprocess.SubprocessError) as err:
                errors.append(str(err))
        self.started.clear()
        if errors:
            raise AssertionError("; ".join(errors))
