"""The Lua scripts this node runs in Redis, and their handles once loaded.

A script runs atomically in Redis, so a check and the change it allows (is this
nick claim still ours? then delete it) can't be split by another node's write.
The history scripts (STORE, SEED) live with the streams they write (streams.py).
"""

from __future__ import annotations

from typing import Any

from .streams import SEED, STORE

# Frees a node's nicks and room memberships (only those still pointing at it) and forgets it.
# ARGV: key prefix, node id. Returns how many users the node had.
FORGET_NODE = """
local p, node = ARGV[1], ARGV[2]
local users = redis.call('HKEYS', p .. 'users:' .. node)
for _, k in ipairs(users) do
  if redis.call('GET', p .. 'nick:' .. k) == node then redis.call('DEL', p .. 'nick:' .. k) end
end
for _, room in ipairs(redis.call('HKEYS', p .. 'rooms')) do
  for _, k in ipairs(users) do
    if redis.call('HGET', p .. 'room:' .. room, k) == node then redis.call('HDEL', p .. 'room:' .. room, k) end
  end
end
redis.call('DEL', p .. 'users:' .. node)
redis.call('SREM', p .. 'nodes', node)
return #users
"""

# Deletes a key only while it still holds the given value (a nick claim still ours).
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Scripts:
    """The scripts, once registered with this node's Redis client (load, at start).

    forget_node, release and seed are redis-py Script objects (called with keys=, args=
    and, to go into a pipeline, client=); STORE goes into pipelines by its sha, which
    must be loaded again after Redis restarted (reload_store).
    """

    def __init__(self) -> None:
        self.forget_node: Any = None
        self.release: Any = None
        self.seed: Any = None
        self.store_sha = ""

    def load(self, r: Any) -> None:
        """Register every script with r (at start, before anything is sent)."""
        self.forget_node = r.register_script(FORGET_NODE)
        self.release = r.register_script(RELEASE)
        self.seed = r.register_script(SEED)
        self.reload_store(r)

    def reload_store(self, r: Any) -> None:
        """Load STORE (again): a Redis that restarted forgot it, and pipelines can't load it themselves."""
        self.store_sha = r.script_load(STORE)
