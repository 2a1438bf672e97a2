"""Thrift IDL files -> method names, parameter and exception names
(Packetbeat's ``thrift_idl.go``), parsed with thriftpy2's IDL loader.

``thriftpy2.load(path)`` parses a ``.thrift`` file and every file it
includes (paths relative to the including file); no module is registered in
``sys.modules`` (no module name is given). Each service contributes the
methods it declares itself; a method inherited through ``extends`` belongs to
the service that declares it (``getStruct`` of ``SharedService`` stays
``SharedService`` when ``Calculator extends shared.SharedService``), as
Packetbeat's IDL map does. When two services declare a method of the same
name, the first file listed (then the first service) wins for calls that do
not name their service; calls sent through a multiplexing protocol
(``Service:method``) find their own service's method.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

log = logging.getLogger("packetbeat.thrift")


class IdlError(Exception):
    """An IDL file could not be read or parsed."""


@dataclass(frozen=True)
class IdlMethod:
    service: str
    name: str
    params: dict[int, str] = field(default_factory=dict)      # field id -> name
    exceptions: dict[int, str] = field(default_factory=dict)  # field id -> name
    oneway: bool = False


@dataclass
class Idl:
    by_name: dict[str, IdlMethod] = field(default_factory=dict)
    by_service: dict[tuple[str, str], IdlMethod] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def find(self, method: str, service: str = "") -> IdlMethod | None:
        if service:
            m = self.by_service.get((service, method))
            if m is not None:
                return m
        return self.by_name.get(method)


def _names(spec: dict) -> dict[int, str]:
    return {int(fid): t[1] for fid, t in spec.items() if len(t) > 1 and isinstance(t[1], str) and t[1]}


def _own_methods(svc) -> list[str]:
    """Methods ``svc`` declares itself (not those it inherits)."""
    return [name for name in getattr(svc, "thrift_services", ())
            if name + "_args" in svc.__dict__]


def _modules(root) -> list:
    """``root`` and every module it includes, each once, includes first."""
    out: list = []
    seen: set[int] = set()

    def walk(mod) -> None:
        if id(mod) in seen:
            return
        seen.add(id(mod))
        for inc in getattr(mod, "__thrift_meta__", {}).get("includes", []):
            walk(inc)
        out.append(mod)
    walk(root)
    return out


def load_idl(paths: list[str]) -> Idl:
    """Parse ``paths`` (and their includes) into an :class:`Idl`; raises
    :class:`IdlError` naming the file on any failure."""
    try:
        import thriftpy2
    except ImportError as e:          # a dependency of this package: not expected
        raise IdlError("the thriftpy2 package is needed to read idl_files: %s" % e) from None
    idl = Idl()
    seen_files: set[str] = set()
    inherited: list = []
    for path in paths:
        if not os.path.isfile(path):
            raise IdlError("Error parsing Thrift IDL file %s: no such file" % path)
        try:
            root = thriftpy2.load(os.path.abspath(path))
        except Exception as e:        # thriftpy2 raises its own errors, ply's, OSError...
            raise IdlError("Error parsing Thrift IDL file %s: %s" % (path, e)) from None
        for mod in _modules(root):
            fname = getattr(mod, "__thrift_file__", "") or str(id(mod))
            if fname in seen_files:
                continue
            seen_files.add(fname)
            idl.files.append(fname)
            for svc in mod.__thrift_meta__.get("services", []):
                sname = svc.__name__
                for mname in _own_methods(svc):
                    args = getattr(svc, mname + "_args")
                    result = getattr(svc, mname + "_result", None)
                    rspec = dict(getattr(result, "thrift_spec", {}) or {})
                    rspec.pop(0, None)
                    m = IdlMethod(sname, mname, _names(getattr(args, "thrift_spec", {}) or {}),
                                  _names(rspec), bool(getattr(result, "oneway", False)))
                    idl.by_service.setdefault((sname, mname), m)
                    old = idl.by_name.get(mname)
                    if old is None:
                        idl.by_name[mname] = m
                    elif old.service != sname:
                        log.warning("Thrift IDL: method %s is defined in more services: %s and %s",
                                    mname, old.service, sname)
                inherited.append(svc)
    # a service also answers the methods it inherits (``extends``): found under
    # its own name too (multiplexed calls name the service they were sent to)
    for svc in inherited:
        for base in svc.__mro__[1:]:
            for mname in _own_methods(base):
                m = idl.by_service.get((base.__name__, mname))
                if m is not None:
                    idl.by_service.setdefault((svc.__name__, mname), m)
    return idl
