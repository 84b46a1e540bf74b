"""Issue 16, the storage side: bad CHATHISTORY timestamps, damaged databases, the history writer's bound.

Everything runs against real servers (sockets, or `python -m backend.cli serve` in a
subprocess) except the queue bound and back-pressure, which are unit tests of History.
"""

from __future__ import annotations

import pytest

from tests.ircclient import connect


@pytest.mark.parametrize("stamp", ["2020-13-45T99:99:99Z", "0000-01-01T00:00:00Z", "2021-02-29T00:00:00Z"])
def test_chathistory_with_an_impossible_timestamp_fails_with_a_standard_reply(make_server, stamp: str) -> None:
    server = make_server()
    alice = connect(server.address, "alice")
    make_server.clients.append(alice)
    for sub in ("BEFORE", "AFTER", "AROUND", "LATEST"):
        alice.send(f"CHATHISTORY {sub} #lobby timestamp={stamp} 10")
        alice.expect(rf"FAIL CHATHISTORY INVALID_PARAMS timestamp={stamp} ")
    alice.send(f"CHATHISTORY BETWEEN #lobby timestamp=2020-01-01T00:00:00Z timestamp={stamp} 10")
    alice.expect(rf"FAIL CHATHISTORY INVALID_PARAMS timestamp={stamp} ")
    # The connection is fine, and a good timestamp still works.
    alice.send("CHATHISTORY BEFORE #lobby timestamp=2020-01-01T00:00:00Z 10")
    alice.expect(r"BATCH \+\S+ chathistory #lobby")
