"""The ``packetbeat`` command line (Packetbeat's flags and sub-commands).

    packetbeat [run] [-c FILE] [-E k=v]... [-e] [-d SEL] [-N] [-I FILE | -i DEVICE] [-t] [-l N]
               [--dump FILE] [--workers N]
    packetbeat devices
    packetbeat keygen DIR [NAME]      (a CurveZMQ keypair for cluster.curve: DIR/NAME.key, DIR/NAME.key_secret)
    packetbeat version
    packetbeat test config [-c FILE] [-E k=v]...
    packetbeat export config [-c FILE] [-E k=v]...
    packetbeat export template | export ilm-policy | setup | test output   (coordinator/setup.py)
    packetbeat setup --dashboards                                         (coordinator/kibana.py)
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import sys

import yaml

from shared.config import ConfigError, load_config
from shared.log import setup_logging
from shared.version import VERSION

log = logging.getLogger("packetbeat.coordinator")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="packetbeat", description="Sharded multiprocess Packetbeat.")
    ap.add_argument("command", nargs="*", help="run (default) | version | test config | export config")
    ap.add_argument("-c", dest="config", default=None, help="configuration file (default: packetbeat.yml)")
    ap.add_argument("-E", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="configuration override (repeatable, dotted keys)")
    ap.add_argument("-e", dest="stderr", action="store_true", help="log to stderr")
    ap.add_argument("-d", dest="selectors", action="append", default=[], metavar="SELECTORS",
                    help="enable debug output for comma-separated selectors ('*' for all)")
    ap.add_argument("-v", dest="verbose", action="store_true", help="log at info level")
    ap.add_argument("-N", dest="no_publish", action="store_true", help="disable actual publishing")
    ap.add_argument("-I", dest="read_file", default="", metavar="FILE", help="read packets from a pcap/pcapng file")
    ap.add_argument("-i", dest="device", default="", metavar="DEVICE",
                    help="capture live on DEVICE (name, 'any', or an index from 'packetbeat devices')")
    ap.add_argument("--dump", dest="dump", default="", metavar="FILE", help="write the captured packets to a pcap file")
    ap.add_argument("-t", dest="top_speed", action="store_true",
                    help="read the file as fast as possible (the default for files)")
    ap.add_argument("-l", dest="loop", type=int, default=None, metavar="N",
                    help="loop the file N times (0 = forever)")
    ap.add_argument("--workers", type=int, default=None, metavar="N", help="number of worker processes")
    ap.add_argument("--dashboards", action="store_true",
                    help="with setup: only import the Kibana saved objects (setup.kibana)")
    ap.add_argument("--waitstop", type=int, default=0, help=argparse.SUPPRESS)   # accepted for 5.x test compatibility
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cmd = args.command or ["run"]
    selectors = [s for group in args.selectors for s in group.split(",") if s]
    if cmd == ["devices"]:
        from coordinator.capture.devices import format_devices, list_devices
        sys.stdout.write(format_devices(list_devices()))
        return 0
    if cmd[:1] == ["keygen"]:
        return _keygen(cmd[1:])
    if cmd == ["version"]:
        print("packetbeat version %s (%s), python %s" % (VERSION, platform.machine(), platform.python_version()))
        return 0
    overrides = list(args.overrides)
    if args.device:
        # -i means live capture, also when the configuration names a file
        overrides.append("packetbeat.interfaces.device=%s" % args.device)
        overrides.append("packetbeat.interfaces.file=")
    if args.workers is not None:
        overrides.append("cluster.workers=%d" % args.workers)
    config_path = args.config
    if config_path is None:
        config_path = "packetbeat.yml"
    try:
        settings = load_config(config_path, overrides)
        from shared.metrics import check_config
        check_config(settings)                     # logging.metrics, http (the stats endpoint)
    except ConfigError as exc:
        sys.stderr.write("Exiting: error loading config file: %s\n" % exc)
        return 1
    if cmd == ["test", "config"]:
        print("Config OK")
        return 0
    if cmd == ["export", "config"]:
        sys.stdout.write(yaml.safe_dump(settings.raw, sort_keys=False))
        return 0
    if cmd == ["setup"] and args.dashboards:
        from coordinator.kibana import main as kibana_main
        return kibana_main(settings)
    if cmd in (["setup"], ["test", "output"], ["export", "template"], ["export", "ilm-policy"]):
        from coordinator.setup import main as setup_main
        return setup_main(cmd, settings)
    if cmd != ["run"]:
        sys.stderr.write("Exiting: unknown command %r (run, version, test config, export config)\n" % " ".join(cmd))
        return 1
    return _run(settings, args, selectors)


def _keygen(rest: list[str]) -> int:
    if not 1 <= len(rest) <= 2:
        sys.stderr.write("usage: packetbeat keygen DIR [NAME]   (NAME defaults to the host name)\n")
        return 1
    import socket
    from shared.transport import keygen
    try:
        pub, sec = keygen(rest[0], rest[1] if len(rest) == 2 else socket.gethostname())
    except OSError as exc:
        sys.stderr.write("Exiting: %s\n" % exc)
        return 1
    print("public key: %s\nsecret key: %s (mode 0600: keep it on this host)" % (pub, sec))
    return 0


def _run(settings, args, selectors: list[str]) -> int:
    setup_logging(settings.logging, "coordinator", args.stderr, selectors)
    if args.verbose and not selectors:
        logging.getLogger("packetbeat").setLevel(logging.INFO)
    from shared.transport import check_keys
    try:
        check_keys(settings)              # cluster.curve key files: one clear error before any child starts
    except ConfigError as exc:
        sys.stderr.write("Exiting: %s\n" % exc)
        return 1
    _log_protocols(settings)
    if settings.cluster["role"] == "workers":
        return _run_workers(settings, args, selectors)
    iface = settings.interfaces[0]
    path = args.read_file or iface.get("file") or ""
    if not path:
        return _run_live(settings, args, selectors)
    if not os.path.isfile(path):
        sys.stderr.write("Exiting: capture file %s not found\n" % path)
        return 1
    loops = args.loop if args.loop is not None else iface.get("loop", 1)
    from coordinator.capture.filesplit import file_captures
    settings.cluster["captures"] = file_captures(settings.cluster)     # several readers: each its shards' flows
    if not settings.output and settings.cluster["role"] != "capture":     # a capture host publishes nothing
        sys.stderr.write("Exiting: no output configured\n")
        return 1
    from coordinator.supervisor import Supervisor
    sup = Supervisor(settings, path, loops=loops, publish=not args.no_publish,
                     stderr=args.stderr, selectors=selectors)
    return _supervise(sup)


def _log_protocols(settings) -> None:
    """One line naming every registered analyser (built in, or a third-party plugin found
    through the ``packetbeat.protocols`` entry points), one naming what this configuration
    analyses, and a warning for a configured protocol without an analyser."""
    from worker.protos.registry import load_registry
    registry = load_registry()
    names = registry.names()
    log.info("registered protocol analysers: %s", ", ".join(
        n if registry.origins.get(n, "built-in") == "built-in" else "%s (%s)" % (n, registry.origins[n])
        for n in names if registry.get(n).implemented))
    used = []
    for entry in settings.protocols:
        spec = registry.get(entry["type"])
        if spec is not None and not spec.implemented:
            log.warning("protocol %s is configured but has no analyser in this version; its traffic is ignored",
                        entry["type"])
        elif spec is not None and entry.get("enabled", True):
            ports = entry.get("ports")
            if ports is None:
                ports = list(getattr(spec.config_class(), "ports", []))
            used.append("%s %s" % (entry["type"], "/".join(spec.transports)) +
                        (" %s" % ",".join(str(p) for p in ports) if ports else ""))
    log.info("analysing: %s", "; ".join(used) or "nothing (no protocol enabled)")


def _supervise(sup) -> int:
    """Run the pipeline; log the totals; every error on stderr; exit code 1 when any was recorded."""
    rc = sup.run()
    log.info("Total metrics: %s", dict(sorted(sup.totals.items())))
    for err in sup.errors:
        sys.stderr.write("Exiting: %s\n" % err)
    if rc == 0 and sup.errors:
        rc = 1
    return rc


def _run_workers(settings, args, selectors: list[str]) -> int:
    """A worker host (cluster.role: workers): publisher and workers, fed by
    the captures of other hosts; no capture here (-I / -i do not apply)."""
    if args.read_file or args.device:
        sys.stderr.write("Exiting: cluster.role is workers: this host captures nothing (-I/-i go to the "
                         "capture hosts)\n")
        return 1
    if not settings.output:
        sys.stderr.write("Exiting: no output configured\n")
        return 1
    from coordinator.supervisor import Supervisor
    live = not settings.cluster["replay"]
    log.info("worker host: %d workers (shards %d..%d) on %s, waiting for %d capture process(es)%s",
             settings.cluster["workers"], settings.cluster["first_shard"],
             settings.cluster["first_shard"] + settings.cluster["workers"] - 1, settings.cluster["listen"],
             settings.cluster["captures"], "" if live else " (replay: until each has sent its end of stream)")
    sup = Supervisor(settings, "", publish=not args.no_publish, stderr=args.stderr, selectors=selectors, live=live)
    return _supervise(sup)


def _run_live(settings, args, selectors: list[str]) -> int:
    """Check what would make every capture fail (permission, device, filter,
    user) once, with a clear message, then run the live pipeline."""
    import pwd
    import socket
    from coordinator.capture.afpacket import CaptureError, cooked_device, if_hwtype
    from coordinator.capture.bpf import DLT_EN10MB, DLT_RAW, BpfError, compile_filter
    from coordinator.capture.devices import resolve_device
    from coordinator.capture.live import interface_filter
    from worker.protos.registry import load_registry
    registry = load_registry()
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close()
    except PermissionError:
        sys.stderr.write("Exiting: live capture needs root or CAP_NET_RAW (opening an AF_PACKET socket: "
                         "operation not permitted); read a capture with -I FILE instead\n")
        return 1
    try:
        for iface in settings.interfaces:
            device = resolve_device(iface.get("device") or "any")
            iface["device"] = device
            if device != "any":
                if_hwtype(device)
            cooked = cooked_device(device)
            dlt = DLT_RAW if cooked else DLT_EN10MB
            if iface.get("type") == "pcap":
                from coordinator.capture.libpcap import load_libpcap, pcap_filter_linktype
                load_libpcap()                  # a clear error when libpcap is missing
                dlt = pcap_filter_linktype(device)
            compile_filter(interface_filter(settings, iface, registry, cooked), dlt, iface.get("snaplen", 65535))
    except (ValueError, CaptureError, BpfError) as exc:
        sys.stderr.write("Exiting: %s\n" % exc)
        return 1
    user = settings.cluster.get("run_as_user") or ""
    if user:
        try:
            pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
        except KeyError:
            sys.stderr.write("Exiting: cluster.run_as_user: no such user %r\n" % user)
            return 1
    if not settings.output and settings.cluster["role"] != "capture":     # a capture host publishes nothing
        sys.stderr.write("Exiting: no output configured\n")
        return 1
    from coordinator.supervisor import Supervisor
    sup = Supervisor(settings, "", publish=not args.no_publish, stderr=args.stderr, selectors=selectors,
                     live=True, dump=args.dump or settings.interfaces[0].get("dumpfile") or "")
    return _supervise(sup)


if __name__ == "__main__":
    sys.exit(main())
