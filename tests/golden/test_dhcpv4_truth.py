"""DHCPv4 events of the committed real capture against what the clients did.

``pcaps/dhcpv4_real.pcap`` was captured on the server's veth while
``gen/dhcpv4_real.py`` ran udhcpc, dhclient and dhcpcd against dnsmasq in
network namespaces; ``dhcpv4_real.truth.json`` records what each client said it
sent and received and the lease it was handed. As Packetbeat 8, every datagram
is one event: per client MAC, the BOOTREQUEST events must be exactly the
messages the client sent (in order), the BOOTREPLY events must contain the
messages it received (in order), and the replies' options must be the lease
the client recorded, field by field.
"""
from __future__ import annotations

import json
import pathlib

from tests.helpers import run_packetbeat

PCAPS = pathlib.Path(__file__).resolve().parent / "pcaps"


def _is_subsequence(small: list, big: list) -> bool:
    it = iter(big)
    return all(any(x == y for y in it) for x in small)


def _ecs_mac(mac: str) -> str:
    return mac.replace(":", "-").upper()


def check_lease(ack: dict, lease: dict, ctx) -> None:
    d = ack["dhcpv4"]
    o = d["option"]
    if "ip" in lease:
        assert d["assigned_ip"] == lease["ip"], ctx
    for key, field in (("server_identifier", "server_identifier"), ("lease_time_sec", "ip_address_lease_time_sec"),
                       ("subnet_mask", "subnet_mask"), ("router", "router"), ("dns_servers", "dns_servers"),
                       ("domain_name", "domain_name"), ("ntp_servers", "ntp_servers"),
                       ("broadcast_address", "broadcast_address"), ("renewal_time_sec", "renewal_time_sec"),
                       ("rebinding_time_sec", "rebinding_time_sec"),
                       ("utc_time_offset_sec", "utc_time_offset_sec"), ("time_servers", "time_servers"),
                       ("hostname", "hostname")):
        if lease.get(key) is not None:
            assert o.get(field) == lease[key], (field, ctx)
    if lease.get("server_name") is not None:
        assert d["server_name"] == lease["server_name"], ctx
    if lease.get("boot_file_name") is not None:
        assert d["boot_file_name"] == lease["boot_file_name"], ctx


def check_events(events: list[dict], truth: dict) -> None:
    server_ip = truth["server"]["ip"]
    by_mac: dict[str, list[dict]] = {}
    for ev in sorted(events, key=lambda e: e["event"]["start"]):
        assert ev["type"] == "dhcpv4" and ev["status"] == "OK", ev
        assert ev["event"]["dataset"] == "dhcpv4" and ev["network"]["protocol"] == "dhcpv4", ev
        assert ev["network"]["transport"] == "udp" and ev["network"]["type"] == "ipv4", ev
        assert ev["network"]["bytes"] == ev["source"]["bytes"] > 240, ev
        assert "bytes" not in ev["destination"], ev
        assert "duration" not in ev["event"] and "end" not in ev["event"], ev
        by_mac.setdefault(ev["dhcpv4"]["client_mac"], []).append(ev)
    assert set(by_mac) == {_ecs_mac(c["mac"]) for c in truth["clients"]}
    for c in truth["clients"]:
        evs = by_mac[_ecs_mac(c["mac"])]
        reqs = [e for e in evs if e["dhcpv4"]["op_code"] == "bootrequest"]
        reps = [e for e in evs if e["dhcpv4"]["op_code"] == "bootreply"]
        assert len(reqs) + len(reps) == len(evs), c["case"]
        assert [e["dhcpv4"]["option"]["message_type"] for e in reqs] == c["sent"], c["case"]
        got = [e["dhcpv4"]["option"]["message_type"] for e in reps]
        assert _is_subsequence(c["received"], got), (c["case"], got)
        xids = {e["dhcpv4"]["transaction_id"] for e in reqs}
        for e in evs:
            d = e["dhcpv4"]
            ctx = (c["case"], e)
            assert d["hardware_type"] == "Ethernet" and d["hops"] == 0, ctx
            assert d["transaction_id"].startswith("0x") and len(d["transaction_id"]) == 10, ctx
            if d["op_code"] == "bootrequest":
                # client -> server: client and source are the same endpoint
                assert e["client"] == e["source"] and e["server"] == e["destination"], ctx
                assert e["client"]["port"] == 68 and e["server"]["port"] == 67, ctx
                if c.get("hostname") and d["option"]["message_type"] in ("discover", "request", "inform"):
                    assert d["option"]["hostname"] == c["hostname"], ctx
                if c.get("vendor_class") and d["option"]["message_type"] in ("discover", "request", "inform"):
                    assert d["option"]["class_identifier"] == c["vendor_class"], ctx
                if c["requested_options"] and d["option"]["message_type"] in ("discover", "request", "inform"):
                    assert set(c["requested_options"]) <= set(d["option"]["parameter_request_list"]), ctx
            else:
                # server -> client: the roles are swapped against source/destination
                assert e["server"]["ip"] == e["source"]["ip"] == server_ip, ctx
                assert e["server"]["port"] == 67 and e["client"]["port"] == 68, ctx
                assert e["server"]["bytes"] == e["source"]["bytes"], ctx
                assert e["client"]["ip"] == e["destination"]["ip"], ctx
                assert d["transaction_id"] in xids, ctx     # answers a request of this client
                assert d["option"]["server_identifier"] == server_ip, ctx
            for name in ("client_ip", "assigned_ip", "relay_ip"):
                if name in d:
                    assert d[name] in e["related"]["ip"], ctx
            assert "relay_ip" not in d, ctx
        acks = [e for e in reps if e["dhcpv4"]["option"]["message_type"] == "ack"]
        # the last ACKs are the leases the client recorded, in order
        for ack, lease in zip(acks[-len(c["leases"]):], c["leases"]):
            check_lease(ack, lease, c["case"])
        if c["client"] == "dhclient":
            # init-reboot: the refused address, then the server's reason
            assert reqs[0]["dhcpv4"]["option"]["requested_ip_address"] == c["old_lease_ip"]
            nak = next(e for e in reps if e["dhcpv4"]["option"]["message_type"] == "nak")
            assert nak["dhcpv4"]["transaction_id"] == reqs[0]["dhcpv4"]["transaction_id"]
            assert nak["dhcpv4"]["option"]["message"] and "assigned_ip" not in nak["dhcpv4"]
            release = reqs[-1]["dhcpv4"]
            assert release["client_ip"] == c["leases"][-1]["ip"]
            assert reqs[-1]["source"]["ip"] == c["leases"][-1]["ip"] and reqs[-1]["destination"]["ip"] == server_ip
        if c["client"] == "dhcpcd":
            inform = reqs[0]["dhcpv4"]
            assert inform["client_ip"] == c["inform_ip"] and reqs[0]["source"]["ip"] == c["inform_ip"]
            assert [r["dhcpv4"]["transaction_id"] for r in reqs] == c["transaction_ids"]
            vivc = inform["option"]["vendor_identifying_options"]
            assert [v["id"] for v in vivc] == [c["vivc"]["id"]]
            assert c["vivc"]["text"].encode().hex() in vivc[0]["data"]
            ack = acks[-1]["dhcpv4"]
            assert "assigned_ip" not in ack and ack["client_ip"] == c["inform_ip"]
            assert "ip_address_lease_time_sec" not in ack["option"]      # RFC 2131 4.3.5
        if "declined_ip" in c:
            decline = next(e for e in reqs if e["dhcpv4"]["option"]["message_type"] == "decline")
            assert decline["dhcpv4"]["option"]["requested_ip_address"] == c["declined_ip"]
            assert any(e["dhcpv4"].get("assigned_ip") == c["declined_ip"] for e in reps)
        if c["client"] == "udhcpc" and "declined_ip" not in c:
            renew = reqs[2]
            lease_ip = c["leases"][0]["ip"]
            assert renew["source"]["ip"] == lease_ip and renew["destination"]["ip"] == server_ip
            assert renew["dhcpv4"]["client_ip"] == lease_ip
            assert reqs[-1]["dhcpv4"]["option"]["message_type"] == "release"
            assert reqs[-1]["dhcpv4"]["client_ip"] == lease_ip


def test_dhcpv4_real_capture_matches_truth(tmp_path):
    truth = json.loads((PCAPS / "dhcpv4_real.truth.json").read_text())
    proc, events = run_packetbeat(tmp_path, PCAPS / "dhcpv4_real.pcap",
                                  protocols=[{"type": "dhcpv4", "ports": [67, 68]}], workers=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # every frame of the capture is a DHCP message: one event each
    assert len(events) == truth["packets"]
    check_events(events, truth)
