"""Kibana dashboard of the DHCPv4 analyser: message types over time, busiest
clients and servers, handed-out addresses, NAK/DECLINE reasons and
client fingerprints (vendor class, host name). One event per DHCP message, so
there is no latency panel (Packetbeat does not pair DHCP messages)."""


def dashboard(k):
    q = "type:dhcpv4"
    P = k.P
    objs = [
        k.over_time_by(P + "dhcpv4-message-types", "DHCP messages over time by type",
                       "dhcpv4.option.message_type", q,
                       description="One event per DHCP message (discover, offer, request, ack, nak, ...)"),
        k.share(P + "dhcpv4-message-share", "DHCP message types", "dhcpv4.option.message_type", q),
        k.top_table(P + "dhcpv4-top-clients", "Busiest DHCP clients (MAC)", "dhcpv4.client_mac", q,
                    latency_col=False, label="Client MAC"),
        k.top_table(P + "dhcpv4-servers", "DHCP servers", "dhcpv4.option.server_identifier",
                    q + " and dhcpv4.op_code:bootreply", latency_col=False, label="Server identifier"),
        k.search(P + "dhcpv4-search-naks", "DHCP NAKs and DECLINEs",
                 q + " and (dhcpv4.option.message_type:nak or dhcpv4.option.message_type:decline)",
                 ["dhcpv4.client_mac", "dhcpv4.option.message_type", "dhcpv4.option.message",
                  "dhcpv4.option.requested_ip_address", "dhcpv4.option.server_identifier"],
                 "Addresses refused by a server (NAK, with its reason) or by a client (DECLINE)"),
        k.count_metric(P + "dhcpv4-nak-count", "DHCP NAKs", q + " and dhcpv4.option.message_type:nak"),
        k.top_table(P + "dhcpv4-vendor-classes", "Client vendor classes", "dhcpv4.option.class_identifier",
                    q + " and dhcpv4.op_code:bootrequest", latency_col=False, label="Vendor class"),
        k.top_table(P + "dhcpv4-assigned", "Addresses handed out", "dhcpv4.assigned_ip",
                    q + " and dhcpv4.option.message_type:ack", latency_col=False, label="Assigned IP"),
        k.search(P + "dhcpv4-search-leases", "DHCP leases handed out",
                 q + " and dhcpv4.option.message_type:ack",
                 ["dhcpv4.client_mac", "dhcpv4.assigned_ip", "dhcpv4.option.hostname",
                  "dhcpv4.option.ip_address_lease_time_sec", "dhcpv4.option.server_identifier",
                  "dhcpv4.transaction_id"],
                 "DHCPACKs: which client got which address, from which server, for how long"),
        k.search(P + "dhcpv4-search-clients", "DHCP client requests", q + " and dhcpv4.op_code:bootrequest",
                 ["dhcpv4.client_mac", "dhcpv4.option.message_type", "dhcpv4.option.hostname",
                  "dhcpv4.option.class_identifier", "dhcpv4.option.requested_ip_address", "dhcpv4.client_ip",
                  "dhcpv4.transaction_id"],
                 "What clients ask for: host name, vendor class, requested address"),
    ]
    return objs, k.dashboard(P + "dhcpv4", "[Packetbeat] DHCPv4",
                             "DHCP message types, clients, servers, leases and NAK/DECLINE reasons",
                             [(objs[0], 32, 15), (objs[1], 16, 15), (objs[2], 16, 14), (objs[3], 16, 14),
                              (objs[5], 16, 14), (objs[6], 24, 14), (objs[7], 24, 14), (objs[4], 48, 12),
                              (objs[8], 48, 14), (objs[9], 48, 14)], query=q)
