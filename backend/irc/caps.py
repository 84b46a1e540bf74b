"""The IRCv3 capabilities Lobby offers, with their CAP LS 302 values: advertise only what works.

Each one is implemented in the core; the README's protocol section lists them and where
Lobby departs from their specifications.
"""

from __future__ import annotations

MONITOR_MAX = 100
MULTILINE_MAX_BYTES = 4096
MULTILINE_MAX_LINES = 100

CAPABILITIES: dict[str, str] = {
    "server-time": "",
    "message-tags": "",
    "echo-message": "",
    "batch": "",
    "labeled-response": "",
    "standard-replies": "",
    "cap-notify": "",
    "multi-prefix": "",
    "userhost-in-names": "",
    "no-implicit-names": "",
    "away-notify": "",
    "setname": "",
    "chghost": "",
    "extended-monitor": "",
    "invite-notify": "",
    "draft/multiline": f"max-bytes={MULTILINE_MAX_BYTES},max-lines={MULTILINE_MAX_LINES}",
    "draft/chathistory": "",
    "draft/message-redaction": "",
    "sasl": "PLAIN",
    "account-tag": "",
    "account-notify": "",
    "extended-join": "",
    "draft/account-registration": "before-connect,custom-account-name",
}

# Offered only by a server that keeps accounts (a --db).
ACCOUNT_CAPS = frozenset({"sasl", "account-tag", "account-notify", "extended-join", "draft/account-registration"})
