"""The shortest end-to-end proof: two users register and talk."""

from tests.ircclient import IrcClient


def test_two_users_talk(client) -> None:
    alice: IrcClient = client("alice")
    bob: IrcClient = client("bob")
    alice.expect(r":bob!\S+ JOIN #lobby")
    bob.send("PRIVMSG #lobby :hello alice")
    msg = alice.expect(r"PRIVMSG #lobby")
    assert msg.params == ("#lobby", "hello alice")
    assert msg.source and msg.source.startswith("bob!")
