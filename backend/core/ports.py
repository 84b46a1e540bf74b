"""The cluster port: what the core asks of the other nodes, and the null cluster of a node on its own.

The core never imports Redis: `backend/cluster` implements Cluster and `backend/node.py`
plugs it in. Both calls happen outside the hub's lock.
"""

from __future__ import annotations

from typing import Protocol

from .events import Event


class Cluster(Protocol):
    """The other nodes, as the core sees them."""

    def claim(self, nick: str) -> bool:
        """Claim nick cluster-wide; True if newly claimed here. Raises IrcError 433 if another node has it."""
        ...

    def release(self, nick: str) -> None:
        """Give up a claim made with claim()."""
        ...

    def publish(self, event: Event) -> None:
        """Tell the other nodes what happened here; never blocks on the network."""
        ...


class NullCluster:
    """A node on its own: every nick claim is local, nothing is told to anyone."""

    def claim(self, nick: str) -> bool:
        """Nothing to claim beyond this node."""
        return False

    def release(self, nick: str) -> None:
        """Nothing was claimed."""

    def publish(self, event: Event) -> None:
        """Nobody else to tell."""


class RoomStore(Protocol):
    """Where rooms' settings (Room.settings(): topic, modes, key, bans, quiets) outlive a restart."""

    def load(self) -> list[dict[str, object]]:
        """Every room's saved settings."""
        ...

    def save(self, settings: dict[str, object]) -> None:
        """Keep one room's settings (replacing what was kept for it)."""
        ...


class AccountStore(Protocol):
    """Where accounts live: a name and a password hash each (core/passwords.py), nothing in clear."""

    def password_hash(self, name: str) -> str | None:
        """The hash of an account's password, or None when there is no such account."""
        ...

    def display_name(self, name: str) -> str | None:
        """The account's name as it was created (names compare case-insensitively)."""
        ...

    def create(self, name: str, password_hash: str) -> bool:
        """Make an account; False when the name is taken."""
        ...


class TokenStore(Protocol):
    """Where sign-in tokens live (what keeps a browser signed in): hashes only, never a token in clear."""

    def issue(self, account: str, label: str) -> str:
        """A new random token signing in to account (label: which browser); only its hash is kept."""
        ...

    def account(self, token: str) -> str | None:
        """The account a live token signs in to, or None (unknown or revoked)."""
        ...

    def revoke(self, token: str) -> bool:
        """Forget a token (signing out); False if it was not live."""
        ...


class Attachments(Protocol):
    """The files a message names (uploads, kept by the web app): they go when the message goes."""

    def forget(self, text: str, author: str) -> None:
        """A message by author (a nick, compared folded) was deleted: delete the files of ours that its text
        names and that author uploaded; files uploaded by someone else stay."""
        ...
