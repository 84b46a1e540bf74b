"""The `lobby` command: `lobby serve` runs the server, `lobby connect` the terminal client."""

from __future__ import annotations

import argparse
import csv
import getpass
import logging
import os
import secrets
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from .cluster.accounts import RedisAccounts, RedisAccountsError
from .configfile import ConfigError, ConfigFile, Flag, load, render
from .core.accounts import PASSWORD_MAX, PASSWORD_MIN
from .core.passwords import hash_password
from .irc import is_valid_channel, is_valid_nick
from .net.transport import server_context
from .node import BackplaneError, ChatServer, HistoryError, ServerConfig, format_address
from .store.accounts import Accounts, AccountsError
from .store.tokens import Tokens

# Where `lobby accounts` keeps accounts: the SQLite file, or a cluster's Redis.
AccountBook = Accounts | RedisAccounts

# Seconds a thread may hold the GIL before a waiting thread asks for it (Python's default: 0.005).
SWITCH_INTERVAL = 0.02


def build_parser(serve_defaults: dict[str, Any] | None = None) -> argparse.ArgumentParser:
    """The argument parser for every subcommand; serve_defaults (from --config) replace serve's own."""
    parser = argparse.ArgumentParser(prog="lobby", description="Lobby: a small self-hosted chat.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the chat server (and the web page)")
    serve_options(serve)
    serve.add_argument("--config", default=None, metavar="FILE",
                       help="read settings from a TOML file (see lobby.example.toml); flags given here win")
    serve.add_argument("--print-config", action="store_true",
                       help="print the settings in effect (flags, the file, defaults) as TOML, and exit")
    if serve_defaults:
        serve.set_defaults(**serve_defaults)

    connect = sub.add_parser("connect", help="chat from this terminal")
    connect.add_argument("--host", default="127.0.0.1", help="server address (default 127.0.0.1)")
    connect.add_argument("--port", type=int, default=14900, help="server chat port (default 14900)")
    connect.add_argument("--name", default=None, help="your nickname (asked for when not given)")
    connect.add_argument("--account", default=None,
                         help="sign in to this account (its password: LOBBY_ACCOUNT_PASSWORD, or asked for)")
    connect.add_argument("--password", default=os.environ.get("LOBBY_PASSWORD"),
                         help="the server's password, if it has one (or set LOBBY_PASSWORD, which ps does not show)")

    sub.add_parser("hash-password", help="print a hash of a password, for a server operator in the --config file")

    accounts = sub.add_parser("accounts", help="make and manage accounts (for a class: import a CSV)")
    accounts.add_argument("--db", default="lobby.db", help="the database lobby serve uses (default lobby.db)")
    accounts.add_argument("--redis", default=os.environ.get("LOBBY_REDIS"), metavar="URL",
                          help="the cluster's Redis, where nodes started with --redis keep accounts "
                               "(or set LOBBY_REDIS); instead of --db")
    action = accounts.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = action.add_parser("add", help="make an account; its password is asked, or made up and printed once")
    add.add_argument("name")
    add.add_argument("--generate", action="store_true", help="make up a password and print it once")
    action.add_parser("list", help="every account's name")
    passwd = action.add_parser("passwd", help="set a new password for an account")
    passwd.add_argument("name")
    passwd.add_argument("--generate", action="store_true", help="make up a password and print it once")
    remove = action.add_parser("remove", help="delete an account")
    remove.add_argument("name")
    imported = action.add_parser("import", help="make accounts from a CSV file: name[,password] per line")
    imported.add_argument("file")
    return parser


def serve_options(serve: argparse.ArgumentParser) -> None:
    """The flags of `lobby serve` (every one of them may also be set in the --config file)."""
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1; 0.0.0.0 for a LAN)")
    serve.add_argument("--irc-port", type=int, default=14900, help="chat (IRC) port, 0 = any free (default 14900)")
    serve.add_argument("--web-port", type=int, default=8000, help="web page port, 0 = any free (default 8000)")
    serve.add_argument("--db", default="lobby.db", help="history database file, or :memory: (default lobby.db)")
    serve.add_argument("--check-db", action="store_true",
                       help="check the whole history database for damage before serving (slow on a big file); "
                            "a damaged one is refused with how to recover it")
    serve.add_argument("--history", type=int, default=50, metavar="N",
                       help="lines of a room's history shown on joining it, 0 for none (default 50)")
    serve.add_argument("--server-name", default="lobby", help="the server's name in its own lines (default lobby)")
    serve.add_argument("--motd", default=None, help="message of the day shown after connecting")
    serve.add_argument("--auto-join", default="#lobby", metavar="ROOMS",
                       help="comma-separated rooms every user is put in after connecting, and kept when empty "
                            "(default #lobby; \"\" for none: a plain IRC server)")
    serve.add_argument("--sendq", type=int, default=512 * 1024,
                       help="bytes queued for a slow client before it is dropped (default 524288)")
    serve.add_argument("--registration-timeout", type=float, default=30.0,
                       help="seconds a connection may take to register (default 30)")
    serve.add_argument("--ping-interval", type=float, default=90.0,
                       help="seconds of silence before the server PINGs a client (default 90)")
    serve.add_argument("--ping-timeout", type=float, default=60.0,
                       help="seconds to wait for the answer to that PING (default 60)")
    serve.add_argument("--redis", default=os.environ.get("LOBBY_REDIS"), metavar="URL",
                       help="join a cluster of nodes sharing rooms through Redis, e.g. redis://127.0.0.1:6379/0 "
                            "(or set LOBBY_REDIS, which ps does not show, when the URL holds a password)")
    serve.add_argument("-v", "--verbose", action="store_true", help="log more")

    guard = serve.add_argument_group("limits and security")
    guard.add_argument("--password", default=os.environ.get("LOBBY_PASSWORD"),
                       help="require this password from everyone (or set LOBBY_PASSWORD, which ps does not show)")
    guard.add_argument("--registration", choices=("open", "closed"), default="open",
                       help="who may make an account: anyone (REGISTER, /register), or only `lobby accounts` "
                            "(default open)")
    guard.add_argument("--require-accounts", action="store_true",
                       help="everyone must sign in to an account (a closed class)")
    guard.add_argument("--multiclient", action=argparse.BooleanOptionalAction, default=True,
                       help="one account signed in from several connections at once (a phone and a laptop) "
                            "is one user with one nick; --no-multiclient refuses the second the nick (default on)")
    guard.add_argument("--flood", choices=("on", "off"), default="on",
                       help="flood control: 20 lines at once, then 4 a second (default on)")
    guard.add_argument("--max-clients", type=int, default=4096, help="connections in all (default 4096)")
    guard.add_argument("--max-per-ip", type=int, default=20,
                       help="connections from one address, loopback exempt (default 20)")
    guard.add_argument("--max-rooms", type=int, default=50, help="rooms one user may be in (default 50)")
    guard.add_argument("--tls-port", type=int, default=None, help="also listen for TLS on this port")
    guard.add_argument("--tls-cert", default=None, help="TLS certificate chain (PEM)")
    guard.add_argument("--tls-key", default=None, help="TLS private key (PEM)")
    guard.add_argument("--trusted-proxies", type=int, default=0, metavar="N",
                       help="reverse proxies in front of the web page whose X-Forwarded-* headers to believe "
                            "(1 behind one HTTPS proxy; default 0)")

    files = serve.add_argument_group("uploads")
    files.add_argument("--uploads", choices=("on", "off"), default="on",
                       help="take files pasted or dropped on the page (default on, when there is a files directory)")
    files.add_argument("--files-dir", default=None, metavar="DIR",
                       help="where uploaded files go (default: files/ next to the --db file; none with :memory:)")
    files.add_argument("--max-upload-mb", type=int, default=10, metavar="MB", help="the largest file (default 10)")
    files.add_argument("--upload-quota-mb", type=int, default=1024, metavar="MB",
                       help="all uploaded files together (default 1024)")
    files.add_argument("--upload-daily-mb", type=int, default=200, metavar="MB",
                       help="what one address may upload in a day (default 200)")
    files.add_argument("--public-url", default=None, metavar="URL",
                       help="the page's address as people reach it (https://chat.example behind a proxy), "
                            "for the upload URL IRC clients are given (default: the web port's address)")


def serve_flags() -> dict[str, Flag]:
    """serve's flags by long name, as the --config file may set them."""
    probe = argparse.ArgumentParser(add_help=False)
    serve_options(probe)
    flags: dict[str, Flag] = {}
    for action in probe._actions:
        names = [o for o in action.option_strings if o.startswith("--")]
        if not names:
            continue
        if isinstance(action, argparse._StoreTrueAction | argparse.BooleanOptionalAction):
            flags[names[0][2:]] = Flag(action.dest, bool)
            continue
        convert = action.type if callable(action.type) else str
        choices = tuple(str(c) for c in action.choices) if action.choices else None
        flags[names[0][2:]] = Flag(action.dest, convert, choices)
    return flags


def accounts_command(args: argparse.Namespace) -> int:
    """`lobby accounts add|list|passwd|remove|import`: accounts in the database lobby serve uses,
    or in the cluster's Redis with --redis."""
    store: AccountBook = RedisAccounts(args.redis) if args.redis else Accounts(args.db)
    try:
        store.open()
    except (AccountsError, RedisAccountsError) as err:
        print(f"lobby: {err}", file=sys.stderr)
        return 1
    try:
        return ACCOUNT_ACTIONS[args.action](store, args)
    finally:
        store.close()


def _new_password(generate: bool) -> str | None:
    """A password asked for (twice at a terminal, a line from a pipe), or made up; None if unusable."""
    if generate:
        return secrets.token_urlsafe(9)
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Again: "):
            print("lobby: the two passwords differ", file=sys.stderr)
            return None
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        print(f"lobby: a password has {PASSWORD_MIN} to {PASSWORD_MAX} characters", file=sys.stderr)
        return None
    return password


def _add(store: AccountBook, args: argparse.Namespace) -> int:
    if not is_valid_nick(args.name):
        print(f"lobby: {args.name!r} can't be an account name: it must be a valid nick", file=sys.stderr)
        return 2
    password = _new_password(args.generate)
    if password is None:
        return 2
    if not store.create(args.name, hash_password(password)):
        print(f"lobby: the account {args.name} already exists", file=sys.stderr)
        return 1
    print(f"{args.name}\t{password}" if args.generate else f"made the account {args.name}")
    return 0


def _list(store: AccountBook, args: argparse.Namespace) -> int:
    for name, created in store.names():
        print(f"{name}\t{time.strftime('%Y-%m-%d', time.localtime(created))}")
    return 0


def _passwd(store: AccountBook, args: argparse.Namespace) -> int:
    password = _new_password(args.generate)
    if password is None:
        return 2
    if not store.set_password(args.name, hash_password(password)):
        print(f"lobby: there is no account {args.name}", file=sys.stderr)
        return 1
    print(f"{args.name}\t{password}" if args.generate else f"new password for {args.name}")
    _sign_out_everywhere(args.db, args.name)
    return 0


def _remove(store: AccountBook, args: argparse.Namespace) -> int:
    if not store.remove(args.name):
        print(f"lobby: there is no account {args.name}", file=sys.stderr)
        return 1
    print(f"removed the account {args.name}")
    _sign_out_everywhere(args.db, args.name)
    return 0


def _sign_out_everywhere(db: str, name: str) -> None:
    """A new password (or no account) ends every browser's stay-signed-in token for it."""
    tokens = Tokens(db)
    try:
        tokens.open()
        tokens.revoke_account(name)
    finally:
        tokens.close()


def _import(store: AccountBook, args: argparse.Namespace) -> int:
    """A CSV of name[,password]: each account made; a made-up password printed once; bad rows said by line."""
    try:
        with open(args.file, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        print(f"lobby: cannot read {args.file}: {err}", file=sys.stderr)
        return 1
    bad = 0
    for line, row in enumerate(rows, start=1):
        cells = [cell.strip() for cell in row]
        if not cells or not any(cells) or (line == 1 and cells[0].lower() in ("name", "nick", "account")):
            continue
        name, password = cells[0], (cells[1] if len(cells) > 1 else "")
        problem = None
        if not is_valid_nick(name):
            problem = f"{name!r} can't be an account name (letters, digits, _-[]\\`^{{}}|, at most 30)"
        elif password and not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
            problem = f"the password for {name} must have {PASSWORD_MIN} to {PASSWORD_MAX} characters"
        else:
            made_up = password or secrets.token_urlsafe(9)
            if store.create(name, hash_password(made_up)):
                print(f"{name}\t{made_up}" if not password else f"{name}\t(password from the file)")
                continue
            problem = f"the account {name} already exists"
        bad += 1
        print(f"lobby: {args.file}:{line}: {problem}", file=sys.stderr)
    return 1 if bad else 0


ACCOUNT_ACTIONS = {"add": _add, "list": _list, "passwd": _passwd, "remove": _remove, "import": _import}


def hash_password_command() -> int:
    """`lobby hash-password`: read a password (asked twice at a terminal, one line from a pipe), print its hash."""
    password = _new_password(generate=False)
    if password is None:
        return 2
    print(hash_password(password))
    return 0


def serve(args: argparse.Namespace, file: ConfigFile | None = None) -> int:
    """Run the server until SIGINT or SIGTERM; exit 0 after telling every client."""
    file = file or ConfigFile()
    if args.print_config:
        print(render(vars(args), serve_flags(), file), end="")
        return 0
    # Hundreds of I/O threads contend for the GIL. At the default 5 ms switch interval a
    # thread that fans a message out is made to hand the GIL over mid-loop again and again;
    # at 20 ms it finishes first (docs/benchmarks.md has the measurements).
    sys.setswitchinterval(SWITCH_INTERVAL)
    config = ServerConfig(
        host=args.host,
        port=args.irc_port,
        server_name=args.server_name,
        sendq_bytes=args.sendq,
        registration_timeout=args.registration_timeout,
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        db_path=args.db,
        history_lines=args.history,
        password=args.password or None,
        flood=args.flood == "on",
        max_clients=args.max_clients,
        max_per_ip=args.max_per_ip,
        max_rooms_per_user=args.max_rooms,
        redis_url=args.redis or None,
        check_db=args.check_db,
        registration_open=args.registration == "open",
        require_accounts=args.require_accounts,
        uploads=args.uploads == "on",
        files_dir=args.files_dir or None,
        max_upload_bytes=max(1, args.max_upload_mb) * 1024 * 1024,
        upload_quota_bytes=max(1, args.upload_quota_mb) * 1024 * 1024,
        upload_daily_bytes=max(1, args.upload_daily_mb) * 1024 * 1024,
        multiclient=args.multiclient,
    )
    if args.tls_port is not None:
        if not (args.tls_cert and args.tls_key):
            print("lobby: --tls-port needs --tls-cert and --tls-key", file=sys.stderr)
            return 2
        try:
            config.tls_context = server_context(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as err:
            print(f"lobby: cannot use the TLS certificate or key: {err}", file=sys.stderr)
            return 1
        config.tls_port = args.tls_port
    if args.motd is not None:
        config.motd = args.motd
    rooms = tuple(room for room in args.auto_join.split(",") if room)
    bad = [room for room in rooms if not is_valid_channel(room)]
    if bad:
        print(f"lobby: --auto-join: {bad[0]!r} is not a room name (# then no spaces or commas)", file=sys.stderr)
        return 2
    config.auto_join = rooms
    config.operators = dict(file.operators)
    config.room_defaults = {name: dict(settings) for name, settings in file.rooms.items()}
    # The web bridge proves itself to the server with this secret (WEBIRC).
    config.webirc_password = secrets.token_urlsafe(24)
    server = ChatServer(config)
    # Handlers go in before the address is printed: whoever reads that line may signal at once.
    done = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        done.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        host, port = server.start()
    except (HistoryError, BackplaneError) as err:
        print(f"lobby: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"lobby: cannot listen on {format_address(args.host, args.irc_port)}: {err.strerror or err}",
              file=sys.stderr)
        return 1
    print(f"chat server on {format_address(host, port)}", flush=True)
    if server.tls_address is not None:
        print(f"chat server (TLS) on {format_address(*server.tls_address)}", flush=True)
    from bridge import config_for, create_app  # Flask loads only when serving
    from bridge.web import WebServer

    # Behind a TLS-terminating proxy the page's scheme, host and the browser's
    # address arrive as X-Forwarded-* headers: believe them only from that many hops.
    web_config = {**config_for(server), "LOBBY_TRUSTED_PROXIES": max(0, args.trusted_proxies)}
    # A browser holds a WebSocket and a few page requests at once, hence the looser per-address bound.
    try:
        app = create_app(web_config)
    except OSError as err:
        print(f"lobby: cannot use the files directory {web_config['LOBBY_FILES_DIR']}: {err}", file=sys.stderr)
        server.stop()
        return 1
    web = WebServer(app, args.host, args.web_port,
                    max_connections=args.max_clients, max_per_ip=2 * args.max_per_ip + 8)
    try:
        web_host, web_port = web.start()
    except OSError as err:
        print(f"lobby: cannot listen on {format_address(args.host, args.web_port)}: {err.strerror or err}",
              file=sys.stderr)
        server.stop()
        return 1
    print(f"web on http://{format_address(web_host, web_port)}", flush=True)
    if web_config["LOBBY_FILES_DIR"]:
        # IRC clients learn where to upload from ISUPPORT (draft/FILEHOST) from now on.
        config.filehost_url = public_url(args.public_url, web_host, web_port) + "/upload"
        print(f"uploads in {web_config['LOBBY_FILES_DIR']}", flush=True)

    while not done.wait(0.5):
        pass
    # The chat server first: it tells everyone (browsers too, through their relays)
    # and ends all sessions at once. Closing relays first would make the server
    # fan out one QUIT per browser to every other browser: N² work on the way out.
    server.stop()
    web.stop()
    print("lobby: stopped", file=sys.stderr, flush=True)
    return 0


def public_url(given: str | None, host: str, port: int) -> str:
    """The page's address for others: --public-url, else the web port's (a wildcard: this machine's name)."""
    if given:
        return given.rstrip("/")
    if host in ("", "0.0.0.0", "::"):
        host = socket.gethostname()
    return f"http://{format_address(host, port)}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `lobby` console script."""
    args = build_parser().parse_args(argv)
    file: ConfigFile | None = None
    if args.command == "serve" and args.config:
        try:
            file = load(args.config, serve_flags())
        except ConfigError as err:
            print(f"lobby: {err}", file=sys.stderr)
            return 2
        args = build_parser(file.values).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "serve":
        return serve(args, file)
    if args.command == "hash-password":
        return hash_password_command()
    if args.command == "accounts":
        return accounts_command(args)
    from client.app import run_client

    return run_client(args.host, args.port, args.name, args.password or None, args.account)


if __name__ == "__main__":
    sys.exit(main())
