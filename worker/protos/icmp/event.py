"""ICMP transaction -> event dict, with Packetbeat 8.x field names
(``packetbeat/protos/icmp/icmp.go: publishTransaction``).

Fields: ``type``/``event.dataset`` ``icmp``, ``path`` (the responder's
address), ``status`` (Error when Packetbeat's ``HasError`` says so),
``icmp.version``, ``icmp.request`` / ``icmp.response`` ``{message, type,
code}``, ``source.bytes`` / ``destination.bytes`` (bytes after the ICMP
header of the request / response), ``network.transport`` ``icmp`` or
``ipv6-icmp``, ``event.type`` ``["connection"]``, ``event.start`` /
``event.end`` / ``event.duration`` (reply start - request start, ns), and the
Community ID computed with the ICMP type and code in place of the ports.

``message`` is the human-readable type and code as Packetbeat prints it
(gopacket's ``ICMPv4TypeCode`` / ``ICMPv6TypeCode`` text): ``Type(CodeName)``
when the code has a name, ``Type(code)`` otherwise, ``type(code)`` for an
unknown type: ``EchoRequest(0)``, ``DestinationUnreachable(Port)``.
"""
from __future__ import annotations

from worker.ecs import transaction_event
from worker.plugin import ICMP, ICMPV6
from worker.protos.icmp.trans import IcmpTransaction, _has_error

_V4_TYPES = {
    0: "EchoReply", 3: "DestinationUnreachable", 4: "SourceQuench", 5: "Redirect",
    8: "EchoRequest", 9: "RouterAdvertisement", 10: "RouterSolicitation", 11: "TimeExceeded",
    12: "ParameterProblem", 13: "TimestampRequest", 14: "TimestampReply", 15: "InfoRequest",
    16: "InfoReply", 17: "AddressMaskRequest", 18: "AddressMaskReply",
}
_V4_CODES = {
    3: {0: "Net", 1: "Host", 2: "Protocol", 3: "Port", 4: "FragmentationNeeded",
        5: "SourceRoutingFailed", 6: "NetUnknown", 7: "HostUnknown", 8: "SourceIsolated",
        9: "NetAdminProhibited", 10: "HostAdminProhibited", 11: "NetTOS", 12: "HostTOS",
        13: "CommAdminProhibited", 14: "HostPrecedence", 15: "PrecedenceCutoff"},
    11: {0: "TTLExceeded", 1: "FragmentReassemblyTimeExceeded"},
    12: {0: "PointerIndicatesError", 1: "MissingOption", 2: "BadLength"},
    5: {0: "Net", 1: "Host", 2: "TOS+Net", 3: "TOS+Host"},
}
_V6_TYPES = {
    1: "DestinationUnreachable", 2: "PacketTooBig", 3: "TimeExceeded", 4: "ParameterProblem",
    128: "EchoRequest", 129: "EchoReply", 133: "RouterSolicitation", 134: "RouterAdvertisement",
    135: "NeighborSolicitation", 136: "NeighborAdvertisement", 137: "Redirect",
}
_V6_CODES = {
    1: {0: "NoRouteToDst", 1: "AdminProhibited", 2: "BeyondScopeOfSrc", 3: "AddressUnreachable",
        4: "PortUnreachable", 5: "SrcAddressFailedPolicy", 6: "RejectRouteToDst"},
    3: {0: "HopLimitExceeded", 1: "FragmentReassemblyTimeExceeded"},
    4: {0: "ErroneousHeaderField", 1: "UnrecognizedNextHeader", 2: "UnrecognizedIPv6Option"},
}
_NAMES = {4: (_V4_TYPES, _V4_CODES), 6: (_V6_TYPES, _V6_CODES)}


_MESSAGES: dict = {}    # version << 16 | type << 8 | code -> text (at most 2 * 65536 entries)


def message_text(version: int, typ: int, code: int) -> str:
    """Packetbeat's human-readable ``icmp.*.message`` for a type and code."""
    key = (version << 16) | (typ << 8) | code
    text = _MESSAGES.get(key)
    if text is None:
        text = _MESSAGES[key] = _message_text(version, typ, code)
    return text


_OBJECTS: dict = {}     # the same key -> {message, type, code} (at most 2 * 65536 entries)


def _message_object(version: int, typ: int, code: int) -> dict:
    """A new ``icmp.request`` / ``icmp.response`` object (a copy of a memoised one)."""
    key = (version << 16) | (typ << 8) | code
    obj = _OBJECTS.get(key)
    if obj is None:
        obj = _OBJECTS[key] = {"message": message_text(version, typ, code), "type": typ, "code": code}
    return obj.copy()


def _message_text(version: int, typ: int, code: int) -> str:
    types, codes = _NAMES[version]
    name = types.get(typ)
    if name is None:
        return "%d(%d)" % (typ, code)
    code_name = codes.get(typ, {}).get(code)
    return "%s(%s)" % (name, code_name if code_name is not None else code)


def to_event(trans: IcmpTransaction) -> dict:
    req = trans.request
    resp = trans.response
    version = trans.version
    transport = ICMP if version == 4 else ICMPV6
    dst = trans.dst_ip
    first = req if req is not None else resp
    ev = transaction_event(
        "icmp", (transport, trans.src_ip, 0, dst, 0),
        req.ts if req is not None else None,
        resp.ts if resp is not None else None,
        req.size if req is not None else 0,
        resp.size if resp is not None else 0,
        "Error" if _has_error(trans) else "OK",
        trans.notes,
        transport,
        (first.type, first.code),
    )
    icmp: dict = {"version": version}
    if req is not None:
        icmp["request"] = _message_object(version, req.type, req.code)
    if resp is not None:
        icmp["response"] = _message_object(version, resp.type, resp.code)
    # ICMP events are of type "connection" only: the event's own new
    # ["connection", "protocol"] list loses its last item (no second list)
    event_type: list = ev["event"]["type"]
    event_type.pop()
    ev["path"] = dst
    ev["icmp"] = icmp
    return ev
