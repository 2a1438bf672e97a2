"""Index-template mappings of the fields the DHCPv4 analyser emits
(Packetbeat's ``protos/dhcpv4/_meta/fields.yml``)."""
from __future__ import annotations

_KW = {"type": "keyword", "ignore_above": 1024}
_LONG = {"type": "long"}
_IP = {"type": "ip"}

FIELDS: dict[str, dict] = {
    "dhcpv4.transaction_id": _KW,
    "dhcpv4.seconds": _LONG,
    "dhcpv4.flags": _KW,
    "dhcpv4.client_ip": _IP,
    "dhcpv4.assigned_ip": _IP,
    "dhcpv4.server_ip": _IP,
    "dhcpv4.relay_ip": _IP,
    "dhcpv4.client_mac": _KW,
    "dhcpv4.server_name": _KW,
    "dhcpv4.boot_file_name": _KW,
    "dhcpv4.op_code": _KW,
    "dhcpv4.hops": {"type": "integer"},
    "dhcpv4.hardware_type": _KW,
    "dhcpv4.option.message_type": _KW,
    "dhcpv4.option.parameter_request_list": _KW,
    "dhcpv4.option.requested_ip_address": _IP,
    "dhcpv4.option.server_identifier": _IP,
    "dhcpv4.option.broadcast_address": _IP,
    "dhcpv4.option.max_dhcp_message_size": _LONG,
    "dhcpv4.option.class_identifier": _KW,
    "dhcpv4.option.domain_name": _KW,
    "dhcpv4.option.dns_servers": _IP,
    "dhcpv4.option.vendor_identifying_options": {"type": "object"},
    "dhcpv4.option.subnet_mask": _IP,
    "dhcpv4.option.utc_time_offset_sec": _LONG,
    "dhcpv4.option.router": _IP,
    "dhcpv4.option.time_servers": _IP,
    "dhcpv4.option.ntp_servers": _IP,
    "dhcpv4.option.hostname": _KW,
    "dhcpv4.option.ip_address_lease_time_sec": _LONG,
    "dhcpv4.option.message": {"type": "text"},
    "dhcpv4.option.renewal_time_sec": _LONG,
    "dhcpv4.option.rebinding_time_sec": _LONG,
    "dhcpv4.option.boot_file_name": _KW,
}
