"""Thrift IDL files -> method names, parameter and exception names
(Packetbeat's ``thrift_idl.go``), parsed with thriftpy2's IDL loader.

``thriftpy2.load(path)`` parses a ``.thrift`` file and every file it
includes (paths relative to the including file); no module is registered in
``sys.modules`` (no module name is given). Each service contributes the
methods it declares itself; a method inherited through ``extends`` belongs to
the service that declares it (``getStruct`` of ``SharedService`` stays
``SharedService`` when ``Calculator extends shared.SharedService``), as
Packetbeat's IDL map does. Syntax newer than thriftpy2 reads (annotations on a
``namespace`` line, the ``uuid`` type of Thrift 0.19) is rewritten in a
temporary copy of the files when the first attempt fails. When two services
declare a method of the same
name, the first file listed (then the first service) wins for calls that do
not name their service; calls sent through a multiplexing protocol
(``Service:method``) find their own service's method.
"""
from __future__ import annotations

import logging
import os
import re
import tempfile
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


_INCLUDE = re.compile(r"""^\s*include\s+["']([^"']+)["']""", re.M)
_NS_ANNOTATION = re.compile(r'^(\s*namespace\s+\S+\s+[^\s(]+)\s*\([^)]*\)', re.M)
# ``uuid`` (Thrift 0.19) as a type: before a name, or a container's type argument
_UUID_TYPE = re.compile(r'\buuid\b(?=\s+[A-Za-z_])|(?<=[<,])(\s*)uuid(?=\s*[,>])')


def _modernised(text: str) -> str:
    """IDL text with the newer syntax thriftpy2 does not read made readable:
    annotations after a ``namespace`` line dropped, the ``uuid`` type read
    as ``binary`` (the same names and ids: all this module takes)."""
    text = _NS_ANNOTATION.sub(r"\1", text)
    return _UUID_TYPE.sub(lambda m: (m.group(1) or "") + "binary", text)


def _fresh_parser(thriftpy2) -> None:
    """Forget thriftpy2's per-thread parser state: a failed parse leaves its
    module on the include stack (later includes would resolve against it),
    and the cache would keep files read before they changed."""
    local = getattr(getattr(getattr(thriftpy2, "parser", None), "parser", None), "threadlocal", None)
    if local is not None:
        local.__dict__.clear()


def _load(thriftpy2, path: str):
    _fresh_parser(thriftpy2)
    return thriftpy2.load(path)


def _load_modernised(thriftpy2, path: str):
    """Load ``path`` from rewritten copies of it and of every file it
    includes, laid out under a temporary folder as they are on disk (so
    relative includes still resolve)."""
    with tempfile.TemporaryDirectory(prefix="thrift-idl-") as tmp:
        todo = [os.path.abspath(path)]
        done: set[str] = set()
        while todo:
            src = todo.pop()
            if src in done or not os.path.isfile(src):
                continue
            done.add(src)
            with open(src, encoding="utf-8") as f:
                text = f.read()
            dst = os.path.join(tmp, src.lstrip(os.sep))
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(dst, "w", encoding="utf-8") as f:
                f.write(_modernised(text))
            base = os.path.dirname(src)
            todo += [os.path.normpath(os.path.join(base, inc)) for inc in _INCLUDE.findall(text)]
        return _load(thriftpy2, os.path.join(tmp, os.path.abspath(path).lstrip(os.sep)))


def load_idl(paths: list[str]) -> Idl:
    """Parse ``paths`` (and their includes) into an :class:`Idl`; raises
    :class:`IdlError` naming the file on any failure."""
    try:
        import thriftpy2
        import thriftpy2.parser.parser  # noqa: F401  (its per-thread state is reset before each load)
    except ImportError as e:          # a dependency of this package: not expected
        raise IdlError("the thriftpy2 package is needed to read idl_files: %s" % e) from None
    idl = Idl()
    seen_files: set[str] = set()
    inherited: list = []
    for path in paths:
        if not os.path.isfile(path):
            raise IdlError("Error parsing Thrift IDL file %s: no such file" % path)
        try:
            root = _load(thriftpy2, os.path.abspath(path))
        except Exception as e:        # thriftpy2 raises its own errors, ply's, OSError...
            try:
                root = _load_modernised(thriftpy2, path)
            except Exception:
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
