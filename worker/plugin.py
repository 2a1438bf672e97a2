"""The plugin API: what a protocol plugin sees and what it must provide.

This is Packetbeat's ``protos`` contract in Python (DESIGN.md, "Plugin API").

- The TCP layer (``worker/tcp.py``) owns the per-connection plugin state: it
  passes the state in and keeps what the callback returns (``None`` drops it).
- Time comes from packets: ``Packet.ts`` is integer nanoseconds since the
  epoch. Plugins never start threads or timers and never read the clock.
- A plugin is built by a factory ``factory(config: dict, emit) -> plugin``;
  ``emit(event: dict)`` hands one finished event (msgpack-native values, str
  keys) to the worker, which batches it to the publisher.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from shared.confutil import Duration
from typing import Any, Callable, ClassVar, NamedTuple, Protocol, runtime_checkable

# Transport numbers are the IP protocol numbers.
TCP = 6
UDP = 17
ICMP = 1
ICMPV6 = 58

# Directions of a TCP stream, as Packetbeat's tcp.TCPDirection*.
DIR_ORIGINAL = 0   # client -> server
DIR_REVERSE = 1    # server -> client


class IpPortTuple(NamedTuple):
    """Endpoints of one packet or stream, addresses as text."""
    transport: int
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int

    def reverse(self) -> "IpPortTuple":
        return IpPortTuple(self.transport, self.dst_ip, self.dst_port, self.src_ip, self.src_port)


class TcpTuple(NamedTuple):
    """A TCP connection: ``src`` is the client, ``dst`` the server (the side
    whose port is a configured protocol port). ``conn_id`` is unique within a
    worker for the life of the process."""
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    conn_id: int

    def ip_port(self) -> IpPortTuple:
        return IpPortTuple(TCP, self.src_ip, self.src_port, self.dst_ip, self.dst_port)


class Packet:
    """One payload handed to a plugin (built for every segment: a plain class
    with slots, compiled to an extension type by setup.py; it behaves as the
    ``@dataclass(slots=True)`` it replaces: positional or keyword fields, repr,
    equality)."""

    __slots__ = ("ts", "tuple", "payload")

    def __init__(self, ts, tuple, payload):
        self.ts = ts              # capture time, integer ns since the epoch
        self.tuple = tuple        # IpPortTuple: endpoints in the direction this packet travels
        self.payload = payload    # memoryview: application bytes only

    def __repr__(self) -> str:
        return "Packet(ts=%r, tuple=%r, payload=%r)" % (self.ts, self.tuple, self.payload)

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return (self.ts, self.tuple, self.payload) == (other.ts, other.tuple, other.payload)

    __hash__ = None  # type: ignore[assignment]  # as an unfrozen dataclass


@dataclass(frozen=True)
class ProtocolCommon:
    """Options every protocol has. Each ``<Proto>Config`` is a frozen dataclass
    deriving from this one (one level, no deeper), built from the YAML entry
    with ``shared.confutil.build`` so unknown keys and wrong types are errors
    naming the key path."""
    ports: list[int] = field(default_factory=list)
    send_request: bool = False
    send_response: bool = False
    transaction_timeout: Duration = 10.0   # seconds
    enabled: bool = True
    # Publishing options Packetbeat accepts on every protocol, applied by the
    # worker to the protocol's events (worker/engine.py): tags, fields, the
    # processors; keep_null (false: null fields are removed); index and
    # pipeline (@metadata.raw_index / @metadata.pipeline, which the
    # Elasticsearch output uses instead of its own index and pipeline).
    tags: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    fields_under_root: bool = False
    keep_null: bool = False
    index: str = ""
    pipeline: str = ""
    processors: list[Any] = field(default_factory=list)
    # False in an analyser that publishes no raw request/response text: then
    # send_request / send_response are refused (shared/config.py)
    RAW_TEXT: ClassVar[bool] = True


Emit = Callable[[dict], None]


@runtime_checkable
class TcpPlugin(Protocol):
    def ports(self) -> list[int]: ...

    def parse(self, pkt: Packet, tcptuple: TcpTuple, direction: int, state: Any) -> Any:
        """Feed one in-order payload segment; return the new state."""

    def received_fin(self, tcptuple: TcpTuple, direction: int, state: Any) -> Any:
        """The peer sending in ``direction`` closed its side."""

    def gap_in_stream(self, tcptuple: TcpTuple, direction: int, nbytes: int, state: Any) -> tuple[Any, bool]:
        """``nbytes`` were lost in ``direction``; return (state, drop_stream)."""

    def connection_timeout(self) -> float:
        """Idle timeout in seconds; <= 0 means use the transaction timeout."""

    def flush(self, tcptuple: TcpTuple, state: Any, ts: int) -> None:
        """The TCP layer forgets this connection (idle timeout, close, end of
        stream, dropped stream). Publish whatever is still open, with a note."""


@runtime_checkable
class UdpPlugin(Protocol):
    def ports(self) -> list[int]: ...

    def parse_udp(self, pkt: Packet) -> None: ...

    def expire(self, now: int) -> None:
        """Packet time (or the worker's clock in live mode) reached ``now`` ns:
        publish transactions older than the transaction timeout."""

    def flush_all(self, now: int) -> None:
        """End of stream: publish everything still open."""


@runtime_checkable
class IcmpPlugin(Protocol):
    """The ICMP analyser (registered with transports ("icmp",); it has no ports).
    ``pkt.tuple.transport`` is 1 (ICMPv4) or 58 (ICMPv6), ports are 0, and
    ``pkt.payload`` is the ICMP header and body."""

    def parse_icmp(self, pkt: Packet) -> None: ...

    def expire(self, now: int) -> None: ...

    def flush_all(self, now: int) -> None: ...


class ParseError(Exception):
    """Base class for the one exception type each parser raises."""
