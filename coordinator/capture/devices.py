"""Network devices: the ``packetbeat devices`` listing and ``device: <index>`` lookup.

Indexes are positions in the listing (0, 1, ...), as Packetbeat's
``packetbeat devices`` prints them, so ``packetbeat.interfaces.device: 0``
names the first listed device. The listing comes from the kernel
(``socket.if_nameindex``) and addresses from psutil.
"""
from __future__ import annotations

import socket


def list_devices() -> list[tuple[int, str, list[str]]]:
    """``(index, name, addresses)`` for every device, ordered by kernel ifindex."""
    import psutil
    addrs = psutil.net_if_addrs()
    out = []
    for pos, (_ifindex, name) in enumerate(sorted(socket.if_nameindex())):
        found = [a.address.split("%")[0] for a in addrs.get(name, ())
                 if a.family in (socket.AF_INET, socket.AF_INET6)]
        out.append((pos, name, found))
    return out


def format_devices(devices: list[tuple[int, str, list[str]]]) -> str:
    lines = []
    for index, name, addresses in devices:
        lines.append("%d: %s (%s)" % (index, name, ", ".join(addresses) if addresses else "No assigned ip address"))
    return "\n".join(lines) + ("\n" if lines else "")


def resolve_device(device: str, devices: list[tuple[int, str, list[str]]] | None = None) -> str:
    """A device name for ``device`` (a name, ``any``, or a listing index)."""
    device = str(device)
    if not device.isdigit():
        return device
    devices = list_devices() if devices is None else devices
    index = int(device)
    for pos, name, _ in devices:
        if pos == index:
            return name
    raise ValueError("no device with index %d (packetbeat devices lists %d)" % (index, len(devices)))
