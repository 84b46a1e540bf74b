"""Several Lobby nodes sharing rooms through Redis, behind the core's cluster port."""
