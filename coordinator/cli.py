"""The ``packetbeat`` command line (Packetbeat's flags and sub-commands).

    packetbeat [run] [-c FILE] [-E k=v]... [-e] [-d SEL] [-N] [-I FILE | -i DEVICE] [-t] [-l N]
               [--dump FILE] [--workers N] [--path.home DIR] [--path.config DIR] [--path.data DIR]
               [--path.logs DIR] [--strict.perms=false]
    packetbeat devices
    packetbeat keygen DIR [NAME]      (a CurveZMQ keypair for cluster.curve: DIR/NAME.key, DIR/NAME.key_secret)
    packetbeat keystore create [--force] | add KEY [--stdin] [--force] | list | remove KEY...
    packetbeat version
    packetbeat test config [-c FILE] [-E k=v]...
    packetbeat export config [-c FILE] [-E k=v]...      (secrets hidden)
    packetbeat setup [--index-management] [--pipelines] [--dashboards] | test output
    packetbeat export template | ilm-policy | index-pattern | dashboard --id ID
                                                           (coordinator/setup.py, coordinator/kibana.py)

As Beats: ``-c`` (default ``packetbeat.yml``) is relative to ``path.config``;
``--path.*`` are ``-E path.*=``; with ``--strict.perms`` (default true) the
configuration file must belong to the user running packetbeat (or root) and
must not be writable by group or others.
"""
from __future__ import annotations

import argparse
import logging
import os
import stat
import sys

from shared.confutil import ConfigError
from shared.log import setup_logging
from shared.version import VERSION

log = logging.getLogger("packetbeat.coordinator")

# every command, for the help and the unknown-command message
COMMANDS = (
    ("run", "analyse a capture file (-I) or live traffic (-i); the default"),
    ("setup", "index template, ILM policy (--index-management) and Kibana dashboards (--dashboards)"),
    ("test config", "check the configuration"),
    ("test output", "check the connection to the output"),
    ("export config", "print the configuration (secrets hidden)"),
    ("export template", "print the index template"),
    ("export ilm-policy", "print the ILM policy"),
    ("export index-pattern", "print the Kibana index pattern"),
    ("export dashboard", "print the Kibana dashboards"),
    ("keystore", "manage the secrets keystore: create [--force], add KEY [--stdin] [--force], list, remove KEY"),
    ("version", "print the version"),
    ("devices", "list the capture devices"),
    ("keygen", "create a CurveZMQ keypair for cluster.curve: keygen DIR [NAME]"),
    ("top", "live counters of a running instance, per process: top [--once] [--interval S] [--url URL]"),
)


def _command_list() -> str:
    return "\n".join("  %-22s %s" % c for c in COMMANDS)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="packetbeat", description="Sharded multiprocess Packetbeat.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="commands:\n" + _command_list() + "\n")
    ap.add_argument("command", nargs="*", help="a command (below); run when none is given")
    ap.add_argument("-c", dest="config", default=None,
                    help="configuration file, relative to path.config (default: packetbeat.yml)")
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
    for name, what in (("home", "home directory (default: the working directory)"),
                       ("config", "configuration directory (default: path.home)"),
                       ("data", "data directory: keystore, agent id, disk queue (default: path.home/data)"),
                       ("logs", "log files directory (default: path.home/logs)")):
        ap.add_argument("--path." + name, dest="path_" + name, default=None, metavar="DIR", help=what)
    ap.add_argument("--strict.perms", dest="strict_perms", default="true", metavar="BOOL", nargs="?", const="true",
                    help="refuse a configuration file writable by others or owned by another user (default true)")
    ap.add_argument("--force", action="store_true", help="keystore create/add: overwrite")
    ap.add_argument("--stdin", action="store_true", help="keystore add: read the value from stdin")
    ap.add_argument("--dashboards", action="store_true",
                    help="with setup: import the Kibana saved objects (setup.kibana)")
    ap.add_argument("--index-management", dest="index_management", action="store_true",
                    help="with setup: load the index template and ILM policy")
    ap.add_argument("--pipelines", action="store_true", help="with setup: check the ingest pipelines named")
    ap.add_argument("--id", dest="dashboard_id", default="", help="with export dashboard: the dashboard's id")
    ap.add_argument("--waitstop", type=int, default=0, help=argparse.SUPPRESS)   # accepted for 5.x test compatibility
    return ap


def _bool_flag(text: str, flag: str) -> bool:
    low = str(text).strip().lower()
    if low in ("true", "1", "yes", "on", "t"):
        return True
    if low in ("false", "0", "no", "off", "f"):
        return False
    raise ConfigError(flag, "expected true or false, got %r" % text)


def _config_file(args, overrides: list[str]) -> str:
    """``-c`` resolved against path.config (flags and -E path.* only: the file cannot say where it is)."""
    from shared.config import parse_override, resolve_paths
    flat = {}
    for text in overrides:
        key, value = parse_override(text)
        if key.startswith("path.") and key.count(".") == 1:
            flat[key[5:]] = value
    paths = resolve_paths(flat)
    path = args.config or "packetbeat.yml"
    return path if os.path.isabs(path) else os.path.join(paths["config"], path)


def check_perms(path: str) -> None:
    """Beats' strict.perms: the file belongs to this user or root and only its owner may write it."""
    try:
        st = os.stat(path)
    except OSError:
        return                      # a missing file is reported by the loader
    uid = os.geteuid()
    if st.st_uid not in (uid, 0):
        raise ConfigError("", "config file (%r) must be owned by the user identifier (uid=%d) or root "
                              "(or run with --strict.perms=false)" % (path, uid))
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError("", "config file (%r) can only be writable by the owner but the permissions are %r "
                              "(to fix the permissions use: 'chmod go-w %s', or run with --strict.perms=false)"
                          % (path, stat.filemode(st.st_mode), path))


def main(argv: list[str] | None = None) -> int:
    if (sys.argv[1:] if argv is None else argv)[:1] == ["top"]:      # its own flags: coordinator/top.py
        from coordinator.top import main as top_main
        return top_main((sys.argv[1:] if argv is None else argv)[1:])
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
        import platform
        print("packetbeat version %s (%s), python %s" % (VERSION, platform.machine(), platform.python_version()))
        return 0
    if not _known(cmd):
        sys.stderr.write("Exiting: unknown command %r; the commands are:\n%s\n" % (" ".join(cmd), _command_list()))
        return 1
    if args.loop is not None and args.loop < 0:
        sys.stderr.write("Exiting: -l %d: the loop count must be >= 0 (0 loops forever, 1 reads the file once)\n"
                         % args.loop)
        return 1
    overrides = ["path.%s=%s" % (n, getattr(args, "path_" + n)) for n in ("home", "config", "data", "logs")
                 if getattr(args, "path_" + n) is not None]
    overrides += list(args.overrides)
    if args.device:
        # -i means live capture, also when the configuration names a file
        overrides.append("packetbeat.interfaces.device=%s" % args.device)
        overrides.append("packetbeat.interfaces.file=")
    if args.workers is not None:
        overrides.append("cluster.workers=%d" % args.workers)
    from coordinator.config import load_config
    try:
        config_path = _config_file(args, overrides)
        strict = _bool_flag(args.strict_perms, "--strict.perms")
        if strict:
            check_perms(config_path)
        if cmd[0] == "keystore":
            return _keystore(cmd[1:], config_path, overrides, args)
        settings = load_config(config_path, overrides, strict_perms=strict)
        from shared.metrics import check_config
        check_config(settings)                     # logging.metrics, http (the stats endpoint)
        if cmd in (["run"], ["test", "config"]):
            check_output_writable(settings)
    except ConfigError as exc:
        sys.stderr.write("Exiting: error loading config file: %s\n" % exc)
        return 1
    if cmd == ["test", "config"]:
        print("Config OK")
        return 0
    if cmd == ["export", "config"]:
        import yaml
        sys.stdout.write(yaml.safe_dump(export_tree(config_path, overrides, settings), sort_keys=False))
        return 0
    if cmd in (["setup"], ["test", "output"], ["export", "template"], ["export", "ilm-policy"],
               ["export", "index-pattern"], ["export", "dashboard"]):
        from coordinator.setup import main as setup_main
        flags = {f for f, on in (("index-management", args.index_management), ("pipelines", args.pipelines),
                                 ("dashboards", args.dashboards)) if on}
        return setup_main(cmd, settings, flags, args.dashboard_id)
    if cmd != ["run"]:
        sys.stderr.write("Exiting: %r is not available in this version\n" % " ".join(cmd))
        return 1
    return _run(settings, args, selectors)


def _known(cmd: list[str]) -> bool:
    names = {c for c, _ in COMMANDS}
    return " ".join(cmd) in names or cmd[0] in ("keystore", "keygen")


def _keystore(rest: list[str], config_path: str, overrides: list[str], args) -> int:
    """``keystore ...``: the keystore's place comes from path.data / keystore.path of the
    configuration (a missing configuration file means the defaults)."""
    from coordinator.keystore import command, keystore_path
    from shared.config import early_sections, merged_tree
    tree = merged_tree(config_path if os.path.exists(config_path) else None, overrides)
    path = keystore_path(*early_sections(tree))
    return command(rest, path, args.force, args.stdin)


_SECRET_KEYS = ("password", "passwd", "api_key", "apikey", "token", "secret", "secret_key", "access_key",
                "private_key", "key_passphrase", "passphrase", "credentials")
HIDDEN = "<hidden>"


def export_tree(config_path: str, overrides: list[str], settings) -> dict:
    """The configuration for ``export config``: ``${NAME}`` references stay
    references (so keystore values never show), and a literal value under a
    secret-looking key (password, api_key, token, ...) is replaced by <hidden>."""
    from shared.config import merged_tree
    tree = merged_tree(config_path, overrides)

    def walk(node, key=""):
        if isinstance(node, dict):
            return {k: walk(v, str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, key) for v in node]
        low = key.lower()
        if isinstance(node, (str, int, float)) and not isinstance(node, bool) and \
                any(low == s or low.endswith("_" + s) or low.endswith("." + s) for s in _SECRET_KEYS):
            if isinstance(node, str) and node.startswith("${") and node.endswith("}"):
                return node
            return HIDDEN
        return node
    return walk(tree)


def check_output_writable(settings) -> None:
    """output.file: the directory exists and is writable, or can be created
    (ConfigError naming output.file.path), before any packet is read."""
    fc = (settings.output or {}).get("file")
    if not fc:
        return
    path = os.path.abspath(fc["path"])
    probe = path
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        raise ConfigError("output.file.path", "%s is not a directory" % probe)
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError("output.file.path", "%s is not writable by this user (uid %d)%s"
                          % (probe, os.geteuid(), "" if probe == path else " (cannot create %s)" % path))


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
    try:
        setup_logging(settings.logging, "coordinator", args.stderr, selectors)
    except OSError as exc:
        sys.stderr.write("Exiting: logging.files.path: cannot write the log file %s: %s\n"
                         % (exc.filename or settings.logging["files"]["path"], exc.strerror or exc))
        return 1
    if args.verbose and not selectors:
        logging.getLogger("packetbeat").setLevel(logging.INFO)
    if not settings.agent:
        # the agent id in path.data/meta.json, read or created here (before any child drops
        # privileges); the children take it from the settings
        import socket
        import uuid
        from coordinator.publisher.enrich import stable_agent_id
        host = socket.gethostname()
        try:
            settings.agent = {"id": stable_agent_id(settings.name or host, host, settings.path["data"]),
                              "ephemeral_id": str(uuid.uuid4())}
        except (OSError, ValueError) as exc:
            sys.stderr.write("Exiting: path.data: cannot read or create the agent id: %s\n" % exc)
            return 1
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
    problem = unsupported_linktype(path)
    if problem:
        sys.stderr.write("Exiting: %s\n" % problem)
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


# link-layer header types (tcpdump.org/linktypes.html) a user may meet, for the message
LINKTYPE_NAMES = {0: "NULL", 1: "ETHERNET", 3: "AX25", 6: "IEEE802_5", 7: "ARCNET_BSD", 8: "SLIP", 9: "PPP",
                  10: "FDDI", 12: "RAW", 14: "RAW", 50: "PPP_HDLC", 51: "PPP_ETHER", 101: "RAW",
                  104: "C_HDLC", 105: "IEEE802_11", 107: "FRELAY", 108: "LOOP", 113: "LINUX_SLL",
                  119: "IEEE802_11_PRISM", 127: "IEEE802_11_RADIOTAP", 138: "APPLE_IP_OVER_IEEE1394",
                  139: "MTP2_WITH_PHDR", 140: "MTP2", 141: "MTP3", 142: "SCCP", 143: "DOCSIS",
                  161: "USER0", 187: "BLUETOOTH_HCI_H4", 189: "USB_LINUX", 192: "PPI", 195: "IEEE802_15_4_WITHFCS",
                  201: "BLUETOOTH_HCI_H4_WITH_PHDR", 220: "USB_LINUX_MMAPPED", 228: "IPV4", 229: "IPV6",
                  239: "NFLOG", 249: "USBPCAP", 251: "BLUETOOTH_LE_LL", 253: "NETLINK", 263: "IPOIB",
                  276: "LINUX_SLL2", 283: "EBHSCR", 294: "ETW", 297: "ZBOSS_NCP"}


def unsupported_linktype(path: str) -> str:
    """A message when no packet of the capture has a link type the decoder
    knows (shared/decode.py): its link types by number and name and the packet
    count; "" as soon as one packet has a known link type (usually the first;
    a file that cannot be read is reported by the capture itself)."""
    from coordinator.capture.pcapfile import CaptureFileError, open_capture
    from shared import decode as d
    known = {d.LINKTYPE_NULL, d.LINKTYPE_ETHERNET, d.LINKTYPE_LOOP, d.LINKTYPE_LINUX_SLL,
             d.LINKTYPE_LINUX_SLL2} | set(d._RAW_LINKTYPES)
    seen: dict[int, int] = {}
    try:
        with open_capture(path) as reader:
            for _ts, linktype, _raw in reader:
                if linktype in known:
                    return ""
                seen[linktype] = seen.get(linktype, 0) + 1
    except CaptureFileError:
        return ""
    if not seen:
        return ""
    return "%s: link type %s is not supported (%d packet%s, none analysed); supported: %s" % (
        path, ", ".join("%d (%s)" % (lt, LINKTYPE_NAMES.get(lt, "unknown")) for lt in sorted(seen)),
        sum(seen.values()), "" if sum(seen.values()) == 1 else "s",
        ", ".join(sorted({LINKTYPE_NAMES[lt] for lt in known})))


def _log_protocols(settings) -> None:
    """One line naming every registered analyser (built in, or a third-party plugin found
    through the ``packetbeat.protocols`` entry points), one naming what this configuration
    analyses, and a warning for a configured protocol without an analyser. Only the
    configured analysers are imported (the others are named from the registry's table:
    importing all of them cost the coordinator ~0.1 CPU-s of start-up)."""
    from worker.protos.registry import load_registry
    registry = load_registry()
    log.info("registered protocol analysers: %s", ", ".join(
        n if registry.origins.get(n, "built-in") == "built-in" else "%s (%s)" % (n, registry.origins[n])
        for n in registry.implemented_names()))
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
