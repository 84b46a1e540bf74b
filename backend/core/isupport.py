"""RPL_ISUPPORT (005): the tokens that tell clients what this server does."""

from __future__ import annotations

from ..irc import CHANNEL_MAX, NICK_MAX
from ..irc import numerics as n
from ..irc.caps import MONITOR_MAX
from .chat import Chat
from .chathistory import CHATHISTORY_MAX
from .client import Client
from .messages import MAX_TARGETS
from .moderation import KICK_REASON_MAX
from .modes import MODES_MAX
from .room import FLAG_MODES, KEY_MAX, LIST_MODES, MAXLIST
from .rooms import TOPIC_MAX
from .search import SEARCH_MAX, searchable


def isupport_tokens(chat: Chat) -> list[str]:
    """The RPL_ISUPPORT tokens describing this server."""
    cfg = chat.config
    return [
        "CASEMAPPING=rfc8265",
        "CHANTYPES=#",
        f"CHANMODES={LIST_MODES},k,l,{FLAG_MODES}",
        "PREFIX=(ov)@+",
        f"CHANLIMIT=#:{cfg.max_rooms_per_user}",
        f"MAXLIST={LIST_MODES}:{MAXLIST}",
        f"MODES={MODES_MAX}",
        f"KEYLEN={KEY_MAX}",
        f"KICKLEN={KICK_REASON_MAX}",
        f"NICKLEN={NICK_MAX}",
        f"CHANNELLEN={CHANNEL_MAX}",
        f"TOPICLEN={TOPIC_MAX}",
        f"MAXTARGETS={MAX_TARGETS}",
        f"TARGMAX=PRIVMSG:{MAX_TARGETS},NOTICE:{MAX_TARGETS},TAGMSG:{MAX_TARGETS},NAMES:,"
        f"WHOIS:{MAX_TARGETS},JOIN:,PART:,KICK:4,MONITOR:",
        f"NETWORK={cfg.network}",
        "UTF8ONLY",
        "SAFELIST",
        "ELIST=CMNTU",
        "WHOX",
        f"MONITOR={MONITOR_MAX}",
        "BOT=B",
        f"CHATHISTORY={CHATHISTORY_MAX}",
        "MSGREFTYPES=msgid,timestamp",
        # SEARCH (core/search.py) only where the history has its full-text index.
        *([f"SEARCH={SEARCH_MAX}"] if searchable(chat) is not None else []),
        # soju's filehost token, under its older name and its current one, only while uploads work.
        *([f"draft/FILEHOST={escape_value(cfg.filehost_url)}", f"soju.im/FILEHOST={escape_value(cfg.filehost_url)}"]
          if cfg.filehost_url else []),
    ]


def escape_value(value: str) -> str:
    """An ISUPPORT value with the characters the format reserves escaped (\\xHH)."""
    return "".join(f"\\x{ord(ch):02X}" if ch in " \\=" or ord(ch) < 33 else ch for ch in value)


def send_isupport(chat: Chat, client: Client) -> None:
    """005 lines, at most 13 tokens each (Modern: clients expect them split)."""
    tokens = isupport_tokens(chat)
    for start in range(0, len(tokens), 13):
        client.send_numeric(n.RPL_ISUPPORT, *tokens[start : start + 13], "are supported by this server")
