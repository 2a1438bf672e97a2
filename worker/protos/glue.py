"""Plugin glue shared by the analysers (what every TCP plugin would otherwise repeat)."""
from __future__ import annotations


def feed_or_resync(parser, pkt, error_type) -> tuple[list, bool]:
    """Feed one in-order segment to a direction's parser.

    On the parser's own error, keep the messages it completed before the bad
    bytes and forget the rest of this direction's buffer, so parsing restarts
    with the next segment (Packetbeat's behaviour for HTTP, PostgreSQL, Redis).
    Returns ``(messages, resynced)``.
    """
    try:
        return parser.feed(pkt.payload, pkt.ts), False
    except error_type as e:
        parser.reset()
        return e.messages, True
