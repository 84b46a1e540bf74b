"""What the chat itself can be told at start-up (the network layer and the node add their own)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ChatConfig:
    """The core's settings: names, the welcome, the default room, the password and per-user limits."""

    server_name: str = "lobby"
    network: str = "Lobby"
    motd: str = "Welcome to Lobby. Type /help in the Lobby clients, or use your IRC client's commands."
    # The rooms every user is put in after registering; none at all runs Lobby as a plain IRC
    # server. They are permanent: they stay when they empty.
    auto_join: tuple[str, ...] = ("#lobby",)
    # Their modes until an operator changes them: no +t, so anyone may set their topic.
    auto_join_modes: str = "n"
    # Accounts: whether anyone may REGISTER one (else only `lobby accounts add`), and whether
    # everyone must sign in.
    registration_open: bool = True
    require_accounts: bool = False
    # Multiclient: a connection signing in to an account whose user is online joins that user
    # (same nick, same rooms) instead of being refused the nick.
    multiclient: bool = True
    # Server operators: name -> password hash (`lobby hash-password`); OPER name password.
    operators: dict[str, str] = field(default_factory=dict)
    password: str | None = None
    # Password guessing: each wrong password from an address is answered after a delay that
    # doubles from password_delay up to password_delay_max, and the address gets one check per
    # delay; a right password, or password_quiet seconds without a wrong one, starts it over.
    password_delay: float = 0.5
    password_delay_max: float = 8.0
    password_quiet: float = 300.0
    # The secret the web bridge proves itself with in WEBIRC; None refuses WEBIRC.
    webirc_password: str | None = None
    max_rooms_per_user: int = 50
    # Lines of a room's history replayed on joining it.
    history_lines: int = 50
    # Where IRC clients may upload files (ISUPPORT draft/FILEHOST), when the web bridge takes them.
    filehost_url: str | None = None
    # Shown by ADMIN; empty ones are left out.
    admin_location: str = ""
    admin_email: str = ""
