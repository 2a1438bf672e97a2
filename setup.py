"""Build of the compiled hot paths (Cython 3, pure Python mode).

The ``.py`` files stay the source of truth: each module listed in ``COMPILED``
is compiled as it is, with C types taken from the ``.pxd`` file next to it
when there is one (Cython's "augmenting .pxd"), so the same module still runs
uncompiled. Every extension is optional: on a machine without a C compiler (or
without Cython) the install succeeds and the pure Python modules are used,
slower. Metadata lives in pyproject.toml; this file only adds the extensions.

``pip install -e .`` builds them in place (``<module>.cpython-*.so`` next to the
``.py``; Python imports the extension first). After editing a compiled module
or its ``.pxd``, run ``pip install -e .`` again (or
``python setup.py build_ext --inplace``), otherwise the old ``.so`` keeps
running (tests/unit/test_compiled.py fails on such a stale build).
``PACKETBEAT_NO_COMPILE=1`` at install time skips the extensions;
``PACKETBEAT_COMPILE_ONLY=glob,glob`` (development) builds only the listed
modules that match one of the globs.
"""
from __future__ import annotations

import fnmatch
import glob
import os
import sys

from setuptools import setup

# The one list of compiled modules: paths or globs relative to this file.
# ``__init__.py`` files are never compiled.
COMPILED = [
    "shared/decode.py",
    "shared/shard.py",
    "shared/ipfrag.py",
    "shared/jsonenc.py",         # every event's JSON (workers, publisher): the float walk of encode_event
    "coordinator/capture/filesplit.py",
    "coordinator/capture/pcapfile.py",   # the file's records (the capture's read loop, a generator)
    "coordinator/capture/process.py",    # Sharder.feed: every packet of a file or live capture
    "worker/plugin.py",
    "worker/tcp.py",
    "worker/udp.py",
    "worker/engine.py",
    "worker/flows.py",
    "worker/ecs.py",
    "worker/protos/glue.py",     # TcpAnalyser.parse runs once per packet for every analyser built on it
    "worker/protos/sqltext.py",  # MySQL's and PostgreSQL's statement-text cache, called per event
    "worker/protos/http/*.py",
    "worker/protos/dns/*.py",
    "worker/protos/icmp/*.py",
    "worker/protos/redis/*.py",
    "worker/protos/memcache/*.py",
    "worker/protos/mysql/*.py",
    "worker/protos/pgsql/*.py",
    "worker/protos/nfs/*.py",
    "worker/protos/amqp/*.py",
    "worker/protos/tls/*.py",
    "worker/protos/cassandra/*.py",
    "worker/protos/thrift/*.py",
    "worker/protos/mongodb/*.py",
    "worker/protos/sip/*.py",
    "worker/protos/dhcpv4/*.py",
]
# Matched above but left uncompiled (with the reason).
EXCLUDED: list[str] = [
    # (worker/protos/dns/names.py was here: its module-level ``for _c in b"..."``
    # failed at import once compiled; it now iterates int codes, commit a10276b)
]

# Cython options. ``annotation_typing`` is off: Python annotations in the
# sources document, they do not constrain (``x: bytes`` must keep accepting a
# memoryview); C types come only from the .pxd files.
DIRECTIVES = {
    "language_level": 3,
    "annotation_typing": False,
    "binding": True,
    "embedsignature": False,
}


def _modules() -> list[str]:
    here = os.path.dirname(os.path.abspath(__file__))
    out: list[str] = []
    only = [g for g in os.environ.get("PACKETBEAT_COMPILE_ONLY", "").split(",") if g]
    for pattern in COMPILED:
        for path in sorted(glob.glob(os.path.join(here, pattern))):
            rel = os.path.relpath(path, here)
            if os.path.basename(rel) == "__init__.py" or rel in EXCLUDED or rel in out:
                continue
            if only and not any(fnmatch.fnmatch(rel, g) for g in only):
                continue
            out.append(rel)
    return out


def _extensions() -> list:
    if os.environ.get("PACKETBEAT_NO_COMPILE"):
        return []
    try:
        from Cython.Build import cythonize
        from setuptools import Extension
    except ImportError:
        print("setup.py: Cython is not installed; the pure Python modules will be used",
              file=sys.stderr)
        return []
    # -g0: no debug information (the C files are large; it halves the compile time)
    exts = [Extension(rel[:-3].replace(os.sep, "."), [rel], optional=True, extra_compile_args=["-g0"])
            for rel in _modules()]
    try:
        built = cythonize(exts, compiler_directives=DIRECTIVES, nthreads=os.cpu_count() or 1,
                          quiet=True, annotate=bool(os.environ.get("PACKETBEAT_ANNOTATE")))
    except Exception as exc:  # noqa: BLE001 - a failed translation must not fail the install
        print("setup.py: Cython failed (%s); the pure Python modules will be used" % exc,
              file=sys.stderr)
        return []
    for ext in built:
        # cythonize() returns new Extension objects without ``optional``: set it
        # again, or a machine without a C compiler fails the install
        ext.optional = True
    return built


setup(
    ext_modules=_extensions(),
    # compile the C files in parallel (build time on a fresh machine)
    options={"build_ext": {"parallel": os.cpu_count() or 1}},
)
