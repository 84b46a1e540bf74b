"""`lobby serve --config lobby.toml`, `--print-config` and `lobby hash-password`, run as a user runs them."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from backend.cli import serve_flags
from backend.configfile import ConfigError, load
from backend.core.passwords import check_password, hash_password
from tests.ircclient import connect

ROOT = Path(__file__).resolve().parent.parent


def lobby(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "backend.cli", *args], capture_output=True, text=True,
                          input=stdin, cwd=ROOT, timeout=60)


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "lobby.toml"
    path.write_text(text)
    return str(path)


def test_hash_password_prints_a_hash_that_checks() -> None:
    done = lobby("hash-password", stdin="correct horse\n")
    assert done.returncode == 0, done.stderr
    stored = done.stdout.strip()
    assert check_password("correct horse", stored) and "correct horse" not in done.stdout
    assert lobby("hash-password", stdin="\n").returncode == 2


def test_the_example_file_loads() -> None:
    file = load(str(ROOT / "lobby.example.toml"), serve_flags())
    assert file.values["irc_port"] == 14900 and file.values["auto_join"] == "#lobby,#questions"
    assert file.rooms["#lobby"]["modes"] == "+nt"


@pytest.mark.parametrize(("text", "line", "says"), [
    ("irc-port = 1\nbogus = 2\n", 2, "unknown key 'bogus'"),
    ("irc-port = \"many\"\n", 1, "not a valid value"),
    ("flood = \"sometimes\"\n", 1, "must be one of on, off"),
    ("[operators]\nteacher = \"plain password\"\n", 2, "needs a password hash"),
    ("[rooms.\"nohash\"]\ntopic = \"x\"\n", 1, "not a room name"),
    ("[rooms.\"#a\"]\nmodes = \"+xyz\"\n", 1, "modes are letters"),
])
def test_a_bad_file_is_one_line_naming_the_key_and_line(tmp_path: Path, text: str, line: int, says: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load(path, serve_flags())
    assert f"{path}:{line}:" in str(err.value) and says in str(err.value)
    done = lobby("serve", "--config", path, "--irc-port", "0", "--web-port", "0")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and says in done.stderr


def test_not_toml_at_all_is_refused(tmp_path: Path) -> None:
    done = lobby("serve", "--config", write(tmp_path, "this is = = not toml\n"), "--irc-port", "0")
    assert done.returncode == 2 and "not valid TOML" in done.stderr


def test_print_config_shows_file_values_with_flags_winning_and_hides_the_password(tmp_path: Path) -> None:
    path = write(tmp_path, 'irc-port = 6000\nserver-name = "fromfile"\npassword = "sesame"\n'
                           f'[operators]\nteacher = "{hash_password("x")}"\n[rooms."#lobby"]\ntopic = "hi"\n')
    done = lobby("serve", "--config", path, "--server-name", "fromflag", "--print-config")
    assert done.returncode == 0, done.stderr
    assert "irc-port = 6000" in done.stdout and 'server-name = "fromflag"' in done.stdout
    assert "sesame" not in done.stdout and "# password = (set)" in done.stdout
    assert "[operators]" in done.stdout and '[rooms."#lobby"]' in done.stdout


def test_a_served_config_sets_rooms_operators_and_flags(tmp_path: Path) -> None:
    secret = hash_password("correct horse")
    path = write(tmp_path, f'db = ":memory:"\nauto-join = ["#lobby", "#class"]\nserver-name = "school"\n'
                           f'[operators]\nteacher = "{secret}"\n'
                           '[rooms."#class"]\ntopic = "Today: fractions"\nmodes = "+ntm"\n')
    proc = subprocess.Popen([sys.executable, "-m", "backend.cli", "serve", "--config", path, "--irc-port", "0",
                             "--web-port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"chat server on 127\.0\.0\.1:(\d+)", line)
        assert match, line
        c = connect(("127.0.0.1", int(match.group(1))))
        try:
            c.send("NICK kid")
            c.send("USER kid 0 * :Kid")
            c.expect(r":school 001 kid ")
            assert c.expect(r" 332 kid #class ").params[-1] == "Today: fractions"
            c.send("PRIVMSG #class :can I talk?")
            c.expect(r" 404 kid #class ")  # +m from the configuration
            c.send("OPER teacher :correct horse")
            c.expect(r" 381 kid ")
        finally:
            c.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
