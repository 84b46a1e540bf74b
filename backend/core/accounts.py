"""Accounts: a name that is yours. SASL PLAIN to sign in, REGISTER to make one, and nick protection.

- Signing in: `CAP REQ :sasl`, `AUTHENTICATE PLAIN`, then the base64 of
  `authzid NUL account NUL password` (in 400-byte pieces); answered 900 + 903, or 904.
  A wrong password is slowed down per address and per account (core/guard.py), logged
  without the password, and answered like an unknown account.
- Making one: `REGISTER <account|*> <email|*> <password>` (draft/account-registration),
  before or after connecting, when the server allows it (`--registration open`).
- A registered nick is its account's: someone not signed in to it is refused it (433 with
  the reason) at registration and at NICK, case-insensitively.
- `--require-accounts`: nobody gets past registration without signing in.

Passwords are hashed (scrypt, core/passwords.py) before they reach the store, compared in
constant time, and never logged.
"""

from __future__ import annotations

import base64
import binascii
import logging

from ..irc import IrcError, Message, fold, is_valid_nick
from ..irc import numerics as n
from .chat import Chat
from .client import Client
from .envelope import Envelope
from .events import AccountChanged
from .notify import peers_with
from .passwords import check_password, hash_password

log = logging.getLogger("lobby.accounts")

PASSWORD_MIN = 8
PASSWORD_MAX = 300
SASL_CHUNK = 400
SASL_MAX = 4 * SASL_CHUNK


def account_of_nick(chat: Chat, nick: str) -> str | None:
    """The account a nick belongs to (its own name), if it is registered."""
    if chat.accounts is None:
        return None
    return chat.accounts.display_name(nick)


def check_nick_owner(chat: Chat, client: Client, nick: str) -> None:
    """Raise 433 when nick is a registered account's and client is not signed in to it."""
    owner = account_of_nick(chat, nick)
    if owner is not None and (client.account is None or fold(client.account) != fold(owner)):
        raise IrcError(n.ERR_NICKNAMEINUSE, nick,
                       "Nickname is registered to an account: sign in to it (SASL) or choose another")


def handle_authenticate(chat: Chat, client: Client, msg: Message) -> None:
    """AUTHENTICATE PLAIN / <base64 chunks> / * (abort)."""
    if chat.accounts is None or not client.has("sasl"):
        client.send_numeric(n.ERR_SASLFAIL, "SASL authentication failed (not available)")
        return
    if client.account is not None:
        client.send_numeric(n.ERR_SASLALREADY, "You have already authenticated using SASL")
        return
    arg = msg.params[0]
    if arg == "*":
        client.sasl = None
        client.send_numeric(n.ERR_SASLABORTED, "SASL authentication aborted")
        return
    if client.sasl is None:
        if arg.upper() != "PLAIN":
            client.send_numeric(n.RPL_SASLMECHS, "PLAIN", "are available SASL mechanisms")
            client.send_numeric(n.ERR_SASLFAIL, "SASL authentication failed")
            return
        client.sasl = ""
        client.send(Message("AUTHENTICATE", ("+",)))
        return
    if arg != "+":
        client.sasl += arg
    if len(client.sasl) > SASL_MAX:
        client.sasl = None
        client.send_numeric(n.ERR_SASLTOOLONG, "SASL message too long")
        return
    if len(arg) == SASL_CHUNK:
        return  # more to come
    payload, client.sasl = client.sasl, None
    try:
        _, account, password = base64.b64decode(payload, validate=True).decode("utf-8").split("\0")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        client.send_numeric(n.ERR_SASLFAIL, "SASL authentication failed")
        return
    if sign_in(chat, client, account, password):
        client.send_numeric(n.RPL_SASLSUCCESS, "SASL authentication successful")


def sign_in(chat: Chat, client: Client, account: str, password: str) -> bool:
    """Check account and password (slowed down after failures); on success client is signed in (900)."""
    assert chat.accounts is not None
    keys = (client.host, f"account:{fold(account)}")
    for key in keys:
        while (wait := chat.guard.admit(key)) > 0:
            if not pause(chat, client, wait):
                return False
    stored = chat.accounts.password_hash(account)
    if stored is None or not check_password(password, stored):
        delays = [chat.guard.failed(key) for key in keys]
        log.warning("failed sign-in to account %r from %s", account, client.host)
        if pause(chat, client, max(delays)):
            client.send_numeric(n.ERR_SASLFAIL, "SASL authentication failed")
        return False
    for key in keys:
        chat.guard.succeeded(key)
    logged_in(chat, client, chat.accounts.display_name(account) or account)
    return True


def logged_in(chat: Chat, client: Client, account: str) -> None:
    """900, and (account-notify) the rooms client is in hear of it."""
    client.account = account
    client.send_numeric(n.RPL_LOGGEDIN, client.prefix, account, f"You are now logged in as {account}")
    if client.registered:
        envelope = Envelope(Message("ACCOUNT", (account,), client.prefix))
        chat.publish(AccountChanged(client.member, envelope), peers_with(chat, client, "account-notify"))


def handle_register(chat: Chat, client: Client, msg: Message) -> None:
    """REGISTER <account|*> <email|*> <password>: make an account and sign in to it."""
    if len(msg.params) < 3:
        raise IrcError(n.ERR_NEEDMOREPARAMS, "REGISTER", "Not enough parameters")
    name = client.nick if msg.params[0] == "*" else msg.params[0]
    password = msg.params[2]
    if chat.accounts is None or not chat.config.registration_open:
        _fail(client, "DISALLOWED", name, "Accounts are made by the server's operators here")
        return
    if client.account is not None:
        _fail(client, "ALREADY_AUTHENTICATED", name, "You are already signed in")
        return
    if name == "*" or not is_valid_nick(name):
        _fail(client, "BAD_ACCOUNT_NAME", name, "An account name is a valid nick")
        return
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        _fail(client, "WEAK_PASSWORD", name, f"A password has {PASSWORD_MIN} to {PASSWORD_MAX} characters")
        return
    holder = chat.hub.find(name)
    if holder is not None and holder is not client.member:
        _fail(client, "ACCOUNT_EXISTS", name, "Someone is using that name right now")
        return
    if not chat.accounts.create(name, hash_password(password)):
        _fail(client, "ACCOUNT_EXISTS", name, "That account already exists")
        return
    log.info("account %r made by %s", name, client.host)
    client.send_from_server("REGISTER", "SUCCESS", name, "Account created")
    logged_in(chat, client, name)


def _fail(client: Client, code: str, name: str, text: str) -> None:
    client.send_from_server("FAIL", "REGISTER", code, name or "*", text)


# A connection waiting out a password delay looks this often whether it was ended meanwhile
# (server shutdown, registration timeout), so that it never outlives its connection for long.
WAIT_SLICE = 0.05


def pause(chat: Chat, client: Client, seconds: float) -> bool:
    """Wait seconds in the caller's thread (no lock held); False if the client was ended meanwhile.

    How a wrong password is slowed down (server password, SASL): only the guesser waits.
    """
    guard = chat.guard
    deadline = guard.clock() + seconds
    while client.quit_reason is None:
        left = deadline - guard.clock()
        if left <= 0:
            return True
        guard.sleep(min(left, WAIT_SLICE))
    return False
