"""Per-process CPU of a benchmark run, exact: loaded by every Python process
started with this directory on PYTHONPATH (bench/common.py ``cpu_env``).

When ``PB_BENCH_CPU_LOG`` names a file, each process appends one line at exit:
its role (``coordinator``, ``capture-0``, ``worker-1``, ``publisher``, or its
script), the user and system CPU seconds of all its threads, and its voluntary
and involuntary context switches (``getrusage(RUSAGE_SELF)``), then the wall-clock
times (``time.time()``) at which it started (this module's import) and exited, so
that a run's stalls show which process ended late (bench_e2e ``--timeline``).
Sampling with psutil instead misses what a child spends after the last sample
(its drain), which is most of a short run's tail.
"""
import os

_LOG = os.environ.get("PB_BENCH_CPU_LOG")

if _LOG:
    import atexit
    import resource
    import sys
    import time

    _STARTED = time.time()

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
        # then its context switches: voluntary (it waited: an empty socket, a full queue) and not
        line = "%s %d %.4f %.4f %d %d %.4f %.4f\n" % (_role(), os.getpid(), ru.ru_utime, ru.ru_stime, ru.ru_nvcsw,
                                                     ru.ru_nivcsw, _STARTED, time.time())
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

# ``PB_BENCH_VALGRIND=ROLE:FILE`` (e.g. ``worker-0:/tmp/w0.cg``): that process re-executes
# itself under ``valgrind --tool=callgrind`` (same pid, same arguments) and writes its
# instruction counts to FILE: the exact cost of one real process of a run, by function
# (``callgrind_annotate --inclusive=yes FILE``). Slow (~50x): use a small capture.
_VG = os.environ.get("PB_BENCH_VALGRIND")
if _VG and ":" in _VG and not os.environ.get("PB_BENCH_UNDER_VALGRIND"):
    import sys as _sys2
    _want2, _out2 = _VG.split(":", 1)
    _argv2 = _sys2.argv
    _role2 = _argv2[1] if len(_argv2) > 1 else ""
    if _role2 in ("capture", "worker") and "--index" in _argv2:
        _role2 += "-" + _argv2[_argv2.index("--index") + 1]
    if _role2 == _want2:
        _env2 = dict(os.environ, PB_BENCH_UNDER_VALGRIND="1", PYTHONHASHSEED="0")
        _env2.pop("PB_BENCH_CPU_LOG", None)         # its CPU would be valgrind's
        os.execve("/usr/bin/valgrind", ["valgrind", "--tool=callgrind", "--dump-instr=no",
                                        "--callgrind-out-file=" + _out2, _sys2.executable] + _sys2.orig_argv[1:],
                  _env2)
