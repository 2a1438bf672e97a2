"""``packetbeat.interfaces.type: pcap``: live capture through libpcap, on a veth pair
with a real HTTP server and client in two namespaces (as the af_packet tests)."""
from __future__ import annotations

import ast

import pytest

from coordinator.capture import libpcap
from coordinator.capture.afpacket import CaptureError
from coordinator.capture.pcapfile import open_capture
from shared.decode import decode
from tests.live_capture.test_live_http import _promiscuity, by_query, curl, socket_aton


def test_missing_libpcap_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(libpcap, "LIBRARY_NAMES", ("libpcap-not-here.so.9",))
    monkeypatch.setattr(libpcap, "_lib", None)
    with pytest.raises(CaptureError, match="needs libpcap, which is not installed .*apt-get install libpcap0.8"):
        libpcap.PcapSource("lo")


def test_link_types_mapped_to_the_decoders():
    assert libpcap.pcap_linktype(1) == 1            # DLT_EN10MB
    assert libpcap.pcap_linktype(113) == 113        # DLT_LINUX_SLL (device any)
    assert libpcap.pcap_linktype(12) == 101         # DLT_RAW (Linux) -> LINKTYPE_RAW
    assert libpcap.pcap_linktype(276) == 276
    with pytest.raises(CaptureError, match="link type 127 \\(IEEE802_11_RADIO\\) is not supported"):
        libpcap.pcap_linktype(127, "IEEE802_11_RADIO")


def _pcap(cfg: dict) -> dict:
    return {"packetbeat.interfaces.type": "pcap", **cfg}


def test_pcap_http_transactions_and_dump(veth, http_server, live, tmp_path):
    dump = tmp_path / "pcap.pcap"
    run = live(veth, _pcap({"packetbeat.interfaces.device": veth.srv_dev}), args=("--dump", str(dump)))
    run.wait_ready()
    assert "(libpcap, filter 'not (" in run.text()            # the generated filter, set with pcap_setfilter
    curl(veth, 5, "p")
    assert run.stop() == 0, run.text()
    events = [ev for ev in run.events() if ev.get("type") == "http"]
    assert by_query(events, "p") == {"p=%d" % i: 1 for i in range(5)}, run.text()
    for ev in events:
        assert ev["status"] == "OK" and ev["http"]["response"]["status_code"] == 200
        assert ev["client"]["ip"] == veth.cli_ip and ev["server"]["ip"] == veth.srv_ip
        assert ev["server"]["port"] == 8080 and ev["event"]["duration"] > 0
    records = list(open_capture(str(dump)))
    assert records and all(lt == 1 for _, lt, _ in records)
    assert all(8080 in (decode(lt, raw)[3], decode(lt, raw)[4]) for _, lt, raw in records)
    totals = ast.literal_eval(run.text().split("Total metrics: ")[1].splitlines()[0])
    assert totals["capture.kernel_packets"] == totals["capture.packets"] == len(records)   # from pcap_stats
    assert totals.get("capture.kernel_drops", 0) == 0


def test_pcap_any_device_is_linux_sll(veth, http_server, live, tmp_path):
    dump = tmp_path / "any.pcap"
    run = live(veth, _pcap({"packetbeat.interfaces.device": "any"}), args=("--dump", str(dump)))
    run.wait_ready()
    curl(veth, 3, "a")
    assert run.stop() == 0, run.text()
    assert by_query(run.events(), "a") == {"a=0": 1, "a=1": 1, "a=2": 1}, run.text()
    records = list(open_capture(str(dump)))
    assert records and all(lt == 113 for _, lt, _ in records)


def test_pcap_promisc_and_ignore_outgoing(veth, http_server, live, tmp_path):
    assert _promiscuity(veth) == 0
    dump = tmp_path / "in.pcap"
    run = live(veth, _pcap({"packetbeat.interfaces.device": veth.srv_dev, "packetbeat.interfaces.auto_promisc_mode": True,
                            "packetbeat.interfaces.ignore_outgoing": True}), args=("--dump", str(dump)))
    run.wait_ready()
    assert _promiscuity(veth) == 1
    curl(veth, 2)
    assert run.stop() == 0, run.text()
    assert _promiscuity(veth) == 0
    records = list(open_capture(str(dump)))
    srv = socket_aton(veth.srv_ip)
    assert records and all(decode(lt, raw)[2] == srv for _, lt, raw in records)   # pcap_setdirection(in)
    events = [ev for ev in run.events() if ev.get("type") == "http"]
    assert len(events) == 2 and all(ev["error"]["message"] == "Unmatched request" for ev in events), events


def test_pcap_fanout_two_captures_and_bpf_filter(veth, http_server, live, tmp_path):
    dump = tmp_path / "fan.pcap"
    run = live(veth, _pcap({"packetbeat.interfaces.device": veth.srv_dev,
                            "packetbeat.interfaces.bpf_filter": "tcp port 8080 and tcp[13] & 8 != 0"}),
               args=("--dump", str(dump)), captures=2)
    run.wait_ready()
    curl(veth, 30, "f")
    assert run.stop() == 0, run.text()
    assert by_query(run.events(), "f") == {"f=%d" % i: 1 for i in range(30)}, run.text()
    flows = []
    for k in (0, 1):
        recs = list(open_capture(str(tmp_path / ("fan.%d.pcap" % k))))
        assert recs, "capture %d got nothing: the kernel did not split the load" % k
        for _, lt, raw in recs:                     # the verbatim filter: PSH segments only
            d = decode(lt, raw)
            assert d[5] & 8 and d[9] > d[8]
        flows.append({frozenset(((d[1], d[3]), (d[2], d[4]))) for d in (decode(lt, raw) for _, lt, raw in recs)})
    assert not flows[0] & flows[1]


def test_pcap_bad_filter_is_reported_before_start(veth, live):
    run = live(veth, _pcap({"packetbeat.interfaces.device": veth.srv_dev,
                            "packetbeat.interfaces.bpf_filter": "tcp port nonsense-port"}))
    assert run.proc.wait(30) == 1
    run.logfh.close()
    assert "Exiting: invalid BPF filter 'tcp port nonsense-port'" in run.text()
