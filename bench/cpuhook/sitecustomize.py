"""Per-process CPU of a benchmark run, exact: loaded by every Python process
started with this directory on PYTHONPATH (bench/common.py ``cpu_env``).

When ``PB_BENCH_CPU_LOG`` names a file, each process appends one line at exit:
its role (``coordinator``, ``capture-0``, ``worker-1``, ``publisher``, or its
script) and the user and system CPU seconds of all its threads
(``getrusage(RUSAGE_SELF)``). Sampling with psutil instead misses what a child
spends after the last sample (its drain), which is most of a short run's tail.
"""
import os

_LOG = os.environ.get("PB_BENCH_CPU_LOG")

if _LOG:
    import atexit
    import resource
    import sys

    def _role() -> str:
        argv = sys.argv
        if argv and argv[0].endswith(os.path.join("coordinator", "child.py")) and len(argv) > 1:
            role = argv[1]
            if role != "publisher" and "--index" in argv:
                role += "-" + argv[argv.index("--index") + 1]
            return role
        if argv and argv[0].endswith(os.path.join("coordinator", "__main__.py")):
            return "coordinator"
        return os.path.basename(argv[0]) if argv and argv[0] else "python"

    def _write() -> None:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        line = "%s %d %.4f %.4f\n" % (_role(), os.getpid(), ru.ru_utime, ru.ru_stime)
        fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    atexit.register(_write)

# ``PB_BENCH_PROFILE=ROLE:FILE`` (e.g. ``worker-0:/tmp/w0.prof``): that process runs
# under cProfile from start-up and dumps its pstats to FILE at exit (only Python-level
# calls are seen; compiled functions count in their Python caller's time).
_PROF = os.environ.get("PB_BENCH_PROFILE")
if _PROF and ":" in _PROF:
    import sys as _sys

    def _early_role() -> str:
        argv = _sys.argv        # during start-up ``-m coordinator.child`` shows as ['-m', ROLE, ...]
        role = argv[1] if len(argv) > 1 else ""
        if role in ("capture", "worker") and "--index" in argv:
            role += "-" + argv[argv.index("--index") + 1]
        return role

    _want, _out = _PROF.split(":", 1)
    if _early_role() == _want:
        import atexit as _atexit
        import cProfile as _cProfile
        import time as _time
        _prof = _cProfile.Profile(_time.process_time)   # CPU time: waits on sockets do not count
        _prof.enable()

        def _dump() -> None:
            _prof.disable()
            _prof.dump_stats(_out)

        _atexit.register(_dump)
