"""The ``packetbeat`` command line (Packetbeat's flags and sub-commands).

    packetbeat [run] [-c FILE] [-E k=v]... [-e] [-d SEL] [-N] [-I FILE] [-t] [-l N] [--workers N]
    packetbeat version
    packetbeat test config [-c FILE] [-E k=v]...
    packetbeat export config [-c FILE] [-E k=v]...
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
    ap.add_argument("-t", dest="top_speed", action="store_true",
                    help="read the file as fast as possible (the default for files)")
    ap.add_argument("-l", dest="loop", type=int, default=None, metavar="N",
                    help="loop the file N times (0 = forever)")
    ap.add_argument("--workers", type=int, default=None, metavar="N", help="number of worker processes")
    ap.add_argument("--waitstop", type=int, default=0, help=argparse.SUPPRESS)   # accepted for 5.x test compatibility
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cmd = args.command or ["run"]
    selectors = [s for group in args.selectors for s in group.split(",") if s]
    if cmd == ["version"]:
        print("packetbeat version %s (%s), python %s" % (VERSION, platform.machine(), platform.python_version()))
        return 0
    overrides = list(args.overrides)
    if args.workers is not None:
        overrides.append("cluster.workers=%d" % args.workers)
    config_path = args.config
    if config_path is None:
        config_path = "packetbeat.yml"
    try:
        settings = load_config(config_path, overrides)
    except ConfigError as exc:
        sys.stderr.write("Exiting: error loading config file: %s\n" % exc)
        return 1
    if cmd == ["test", "config"]:
        print("Config OK")
        return 0
    if cmd == ["export", "config"]:
        sys.stdout.write(yaml.safe_dump(settings.raw, sort_keys=False))
        return 0
    if cmd != ["run"]:
        sys.stderr.write("Exiting: unknown command %r (run, version, test config, export config)\n" % " ".join(cmd))
        return 1
    return _run(settings, args, selectors)


def _run(settings, args, selectors: list[str]) -> int:
    setup_logging(settings.logging, "coordinator", args.stderr, selectors)
    if args.verbose and not selectors:
        logging.getLogger("packetbeat").setLevel(logging.INFO)
    iface = settings.interfaces[0]
    path = args.read_file or iface.get("file") or ""
    if not path:
        sys.stderr.write("Exiting: live capture is not available in this version; "
                         "read a capture with -I FILE or packetbeat.interfaces.file\n")
        return 1
    if not os.path.isfile(path):
        sys.stderr.write("Exiting: capture file %s not found\n" % path)
        return 1
    loops = args.loop if args.loop is not None else iface.get("loop", 1)
    if settings.cluster["captures"] != 1:
        log.info("file mode reads the file with one capture process (cluster.captures=%d applies to live capture)",
                 settings.cluster["captures"])
        settings.cluster["captures"] = 1
    from worker.protos.registry import load_registry
    registry = load_registry()
    for entry in settings.protocols:
        spec = registry.get(entry["type"])
        if spec is not None and not spec.implemented:
            log.warning("protocol %s is configured but has no analyser in this version; its traffic is ignored",
                        entry["type"])
    if not settings.output:
        sys.stderr.write("Exiting: no output configured\n")
        return 1
    from coordinator.supervisor import Supervisor
    sup = Supervisor(settings, path, loops=loops, publish=not args.no_publish,
                     stderr=args.stderr, selectors=selectors)
    rc = sup.run()
    log.info("Total metrics: %s", dict(sorted(sup.totals.items())))
    for err in sup.errors:
        sys.stderr.write("Exiting: %s\n" % err)
    if rc == 0 and sup.errors:
        rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
