"""Publisher pieces: chunker limits, console and rotating file outputs, enrichment."""
from __future__ import annotations

import io
import json
import os
import re
import stat
import sys
import time

import pytest

from coordinator.publisher.chunker import Batch, Chunker
from coordinator.publisher.enrich import ECS_VERSION, Enricher, stable_agent_id
from coordinator.publisher.outputs import (
    ConsoleOutput, EncodeError, FileOutput, JsonCodec, Result, encode_event, make_output,
)
from shared.confutil import ConfigError


def _event(i: int, pad: int = 0) -> dict:
    return {"@timestamp": "2024-03-01T10:00:00.%09dZ" % i, "type": "http", "seq": i,
            "http": {"request": {"method": "GET"}}, "pad": "x" * pad}


class FakeClock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


def _local(y, m, d, hh=12) -> float:
    return time.mktime((y, m, d, hh, 0, 0, 0, 0, -1))


def _read_lines(paths) -> list[dict]:
    out = []
    for p in paths:
        with open(p, "rb") as f:
            data = f.read()
        assert data == b"" or data.endswith(b"\n"), p
        out.extend(json.loads(line) for line in data.splitlines())
    return out


# --- encoding --------------------------------------------------------------

def test_encode_event_compact_order_unicode_and_bytes():
    ev = {"z": 1, "a": "é<&>", "b": b"ok\xff", "n": None, "l": [1.5, True]}
    line = encode_event(ev)
    assert line == '{"z":1,"a":"é<&>","b":"ok\ufffd","n":null,"l":[1.5,true]}'.encode("utf-8")


def test_encode_event_rejects_nan_with_encode_error():
    with pytest.raises(EncodeError):
        encode_event({"x": float("nan")})
    with pytest.raises(EncodeError):
        encode_event({"x": object()})


def test_codec_escape_html_and_pretty():
    ev = {"q": "<a href='x'>&</a>", "n": {"k": 1}}
    assert JsonCodec(escape_html=True).encode(ev) == \
        b'{"q":"\\u003ca href=\'x\'\\u003e\\u0026\\u003c/a\\u003e","n":{"k":1}}'
    assert json.loads(JsonCodec(escape_html=True).encode(ev)) == ev
    assert JsonCodec(pretty=True).encode(ev) == \
        b'{\n  "q": "<a href=\'x\'>&</a>",\n  "n": {\n    "k": 1\n  }\n}'


# --- chunker ---------------------------------------------------------------

def test_chunker_count_limit_hands_out_full_batch_at_once():
    ch = Chunker(chunk_size=3, max_chunk_bytes=10**6, flush_after_seconds=None)
    evs = [_event(i) for i in range(7)]
    got = [ch.feed(e, now=0.0) for e in evs]
    assert [g is not None for g in got] == [False, False, True, False, False, True, False]
    assert list(got[2]) == evs[:3] and list(got[5]) == evs[3:6]
    assert got[2].lines == [encode_event(e) for e in evs[:3]]
    assert got[2].nbytes == sum(len(encode_event(e)) + 1 for e in evs[:3])
    last = ch.flush()
    assert list(last) == [evs[6]] and ch.flush() is None


def test_chunker_byte_limit_never_exceeded_and_order_kept():
    evs = [_event(i, pad=(i * 37) % 200) for i in range(200)]
    limit = 1500
    ch = Chunker(chunk_size=10**6, max_chunk_bytes=limit, flush_after_seconds=None)
    batches = [b for b in (ch.feed(e, 0.0) for e in evs) if b is not None]
    tail = ch.flush()
    if tail is not None:
        batches.append(tail)
    assert len(batches) > 5
    for b in batches:
        assert b.nbytes == sum(len(line) + 1 for line in b.lines) <= limit
        assert [encode_event(e) for e in b] == b.lines
    assert [e["seq"] for b in batches for e in b] == list(range(200))
    # each batch but the last is full: the next event would not have fitted
    for b, nxt in zip(batches, batches[1:]):
        assert b.nbytes + len(nxt.lines[0]) + 1 > limit


def test_chunker_oversized_event_gets_its_own_batch():
    ch = Chunker(chunk_size=100, max_chunk_bytes=200, flush_after_seconds=None)
    small, big = _event(1), _event(2, pad=500)
    assert ch.feed(small, 0.0) is None
    first = ch.feed(big, 0.0)
    assert list(first) == [small]
    second = ch.poll(0.0)            # the big one is full on its own
    assert list(second) == [big] and second.nbytes > 200
    assert ch.poll(0.0) is None and len(ch) == 0


def test_chunker_age_limit_with_injected_now():
    ch = Chunker(chunk_size=100, max_chunk_bytes=10**6, flush_after_seconds=1.0)
    assert ch.poll(50.0) is None                    # nothing buffered
    assert ch.feed(_event(1), now=10.0) is None
    assert ch.feed(_event(2), now=10.6) is None
    assert ch.poll(10.99) is None                   # age counts from the first event
    b = ch.poll(11.0)
    assert [e["seq"] for e in b] == [1, 2]
    assert ch.feed(_event(3), now=20.0) is None
    b = ch.feed(_event(4), now=21.5)                # an old batch goes out on feed too
    assert [e["seq"] for e in b] == [3]
    assert [e["seq"] for e in ch.flush()] == [4]


def test_chunker_unencodable_event_passes_through_with_no_line():
    ch = Chunker(chunk_size=2, max_chunk_bytes=10**6, flush_after_seconds=None)
    bad = {"x": float("inf")}
    ch.feed(_event(1), 0.0)
    b = ch.feed(bad, 0.0)
    assert b.lines[1] is None and b[1] is bad
    res = ConsoleOutput(stream=io.StringIO()).publish_batch(b)
    assert res[0].ok and not res[1].ok and "JSON" in res[1].error


def test_chunker_rejects_bad_limits():
    with pytest.raises(ValueError):
        Chunker(chunk_size=0)
    with pytest.raises(ValueError):
        Chunker(max_chunk_bytes=0)


# --- console ---------------------------------------------------------------

def test_console_ndjson_to_captured_stdout(capsys):
    out = ConsoleOutput()
    evs = [_event(1), {"msg": "héllo", "raw": b"\xc3\xa9t\xe9"}]
    res = out.publish_batch(evs)
    assert res == [Result(True), Result(True)]
    text = capsys.readouterr().out
    assert text.endswith("\n")
    lines = text.splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0]) == evs[0]
    assert lines[1] == '{"msg":"héllo","raw":"ét\ufffd"}'
    assert out.stats.events == 2 and out.stats.errors == 0
    assert out.stats.bytes == len(text.encode("utf-8"))


def test_console_uses_preencoded_lines_from_the_chunker(capsys):
    ch = Chunker(chunk_size=2, flush_after_seconds=None, encode=lambda ev: b'{"pre":%d}' % ev["seq"])
    ch.feed(_event(1), 0.0)
    batch = ch.feed(_event(2), 0.0)
    ConsoleOutput().publish_batch(batch)
    assert capsys.readouterr().out == '{"pre":1}\n{"pre":2}\n'


def test_console_pretty_and_escape_html_via_make_output(capsys):
    out = make_output({"console": {"codec": {"json": {"pretty": True, "escape_html": True}}}})
    out.publish_batch([{"a": "<b>", "n": 1}])
    assert capsys.readouterr().out == '{\n  "a": "\\u003cb\\u003e",\n  "n": 1\n}\n'
    out = make_output({"console": {"pretty": True}})
    out.publish_batch(Batch([{"a": 1}], [b'{"a":1}'], 8))   # pretty re-encodes
    assert capsys.readouterr().out == '{\n  "a": 1\n}\n'


def test_console_write_error_gives_results_not_exceptions():
    stream = io.StringIO()
    stream.close()
    out = ConsoleOutput(stream=stream)
    res = out.publish_batch([_event(1), _event(2)])
    assert [r.ok for r in res] == [False, False]
    assert "console output: write failed" in res[0].error
    assert out.stats.errors == 2 and out.stats.events == 0


# --- file ------------------------------------------------------------------

def test_file_rotation_by_size_every_event_once(tmp_path):
    clock = FakeClock(_local(2024, 3, 1))
    out = FileOutput(str(tmp_path / "out"), filename="pb", rotate_every_kb=1, number_of_files=50,
                     clock=clock)
    evs = [_event(i, pad=60) for i in range(100)]
    for k in range(0, 100, 7):
        res = out.publish_batch(evs[k:k + 7])
        assert all(r.ok for r in res)
    out.close()
    files = out.files()
    names = [os.path.basename(p) for p in files]
    assert names[0] == "pb-20240301.ndjson"
    assert names[1:] == ["pb-20240301-%d.ndjson" % i for i in range(1, len(names))]
    assert len(files) > 5
    for p in files:
        assert 0 < os.path.getsize(p) <= 1024
    assert [e["seq"] for e in _read_lines(files)] == list(range(100))
    assert out.stats.events == 100 and out.stats.errors == 0
    assert out.stats.bytes == sum(os.path.getsize(p) for p in files)


def test_file_number_of_files_respected(tmp_path):
    clock = FakeClock(_local(2024, 3, 1))
    out = FileOutput(str(tmp_path), filename="pb", rotate_every_kb=1, number_of_files=3, clock=clock)
    evs = [_event(i, pad=200) for i in range(60)]          # ~4 events per file, ~15 files
    for e in evs:
        assert out.publish_batch([e]) == [Result(True)]
        # libbeat keeps number_of_files rotated files besides the active one
        assert len(out.files()) <= 3 + 1
    out.close()
    files = out.files()
    assert len(files) == 4 and files[-1] == out.active
    seqs = [e["seq"] for e in _read_lines(files)]
    assert seqs == list(range(seqs[0], 60))                 # the newest, contiguous, once each
    assert seqs[0] > 0


def test_file_date_in_name_follows_clock_and_day_change(tmp_path):
    clock = FakeClock(_local(2024, 12, 31, 23))
    out = FileOutput(str(tmp_path), rotate_every_kb=1, clock=clock)
    out.publish_batch([_event(i, pad=300) for i in range(3)])
    clock.t = _local(2025, 1, 1, 1)
    out.publish_batch([_event(i, pad=300) for i in range(3, 6)])
    out.close()
    assert [os.path.basename(p) for p in out.files()] == [
        "packetbeat-20241231.ndjson", "packetbeat-20241231-1.ndjson", "packetbeat-20250101.ndjson"]


def test_file_rotate_on_startup_and_append(tmp_path):
    clock = FakeClock(_local(2024, 3, 1))
    a = FileOutput(str(tmp_path), filename="pb", clock=clock)
    a.publish_batch([_event(1)])
    a.close()
    b = FileOutput(str(tmp_path), filename="pb", clock=clock)                   # default: rotate
    b.publish_batch([_event(2)])
    b.close()
    assert [os.path.basename(p) for p in b.files()] == ["pb-20240301.ndjson", "pb-20240301-1.ndjson"]
    c = FileOutput(str(tmp_path), filename="pb", rotate_on_startup=False, clock=clock)
    c.publish_batch([_event(3)])
    c.close()
    assert len(c.files()) == 2
    assert [e["seq"] for e in _read_lines([c.files()[-1]])] == [2, 3]


def test_file_permissions_and_directory_created(tmp_path):
    target = tmp_path / "a" / "b"
    old = os.umask(0o022)
    try:
        out = make_output({"file": {"path": str(target), "permissions": "0640"}},
                          clock=FakeClock(_local(2024, 3, 1)))
        out.publish_batch([_event(1)])
        out.close()
    finally:
        os.umask(old)
    (p,) = out.files()
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o750
    assert re.fullmatch(r"packetbeat-\d{8}\.ndjson", os.path.basename(p))


def test_file_too_large_event_and_unencodable_event_are_errors(tmp_path):
    out = FileOutput(str(tmp_path), rotate_every_kb=1, clock=FakeClock(_local(2024, 3, 1)))
    res = out.publish_batch([_event(1), _event(2, pad=2000), {"bad": float("nan")}, _event(3)])
    assert [r.ok for r in res] == [True, False, False, True]
    assert "greater than the max file size" in res[1].error
    assert "JSON" in res[2].error
    out.close()
    assert [e["seq"] for e in _read_lines(out.files())] == [1, 3]
    assert out.stats.events == 2 and out.stats.errors == 2


def _unwritable_directory_check(base: str) -> None:
    locked = os.path.join(base, "locked")
    os.mkdir(locked)
    os.chmod(locked, 0o500)
    try:
        out = FileOutput(os.path.join(locked, "sub"), clock=FakeClock(_local(2024, 3, 1)))
        res = out.publish_batch([_event(1), _event(2)])
        assert [r.ok for r in res] == [False, False]
        assert res[0].error.startswith("file output: cannot open ")
        assert "Permission denied" in res[0].error
        assert out.stats.errors == 2
        out.close()
    finally:
        os.chmod(locked, 0o700)


def test_file_unwritable_directory_gives_error_results(tmp_path):
    if not (hasattr(os, "geteuid") and os.geteuid() == 0):
        _unwritable_directory_check(str(tmp_path))
        return
    # root ignores permissions: run the check in a forked child that became 'nobody'
    import pwd
    import tempfile
    import traceback
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("running as root and there is no 'nobody' user to drop to")
    base = tempfile.mkdtemp(prefix="pb-perm-")
    os.chown(base, nobody.pw_uid, nobody.pw_gid)
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:                                  # child: never returns into pytest
        code = 1
        try:
            os.close(rfd)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            _unwritable_directory_check(base)
            code = 0
        except BaseException:
            os.write(wfd, traceback.format_exc().encode())
        finally:
            os._exit(code)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as fh:
        err = fh.read().decode()
    _, status = os.waitpid(pid, 0)
    import shutil
    shutil.rmtree(base, ignore_errors=True)
    assert os.waitstatus_to_exitcode(status) == 0, err


def test_file_path_blocked_by_a_file_gives_error_results(tmp_path):
    (tmp_path / "blocker").write_text("not a directory")
    out = FileOutput(str(tmp_path / "blocker" / "out"), clock=FakeClock(_local(2024, 3, 1)))
    res = out.publish_batch([_event(1)])
    assert not res[0].ok and res[0].error.startswith("file output: cannot open ")
    assert "Not a directory" in res[0].error


def test_file_rotation_failure_mid_batch(tmp_path, monkeypatch):
    out = FileOutput(str(tmp_path), rotate_every_kb=1, clock=FakeClock(_local(2024, 3, 1)))
    assert out.publish_batch([_event(0)]) == [Result(True)]    # active file open
    real_open = os.open

    def no_new_files(path, flags, mode=0o777):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", no_new_files)
    res = out.publish_batch([_event(i, pad=300) for i in range(1, 6)])
    monkeypatch.setattr(os, "open", real_open)
    assert [r.ok for r in res] == [True, True, False, False, False]
    assert "cannot rotate to" in res[2].error and "Permission denied" in res[2].error
    assert out.publish_batch([_event(9)]) == [Result(True)]    # recovers on the next batch
    out.close()
    assert [e["seq"] for e in _read_lines(out.files())] == [0, 1, 2, 9]


def test_file_write_failure_is_cut_back(tmp_path, monkeypatch):
    out = FileOutput(str(tmp_path), clock=FakeClock(_local(2024, 3, 1)))
    assert out.publish_batch([_event(1)]) == [Result(True)]
    real_write = os.write

    def short_then_full(fd, data):       # writes part of the data, then "disk full"
        if len(data) > 10:
            return real_write(fd, bytes(data[:10]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", short_then_full)
    res = out.publish_batch([_event(2), _event(3)])
    monkeypatch.undo()
    assert [r.ok for r in res] == [False, False]
    assert "No space left on device" in res[0].error
    assert out.publish_batch([_event(4)]) == [Result(True)]
    out.close()
    assert [e["seq"] for e in _read_lines(out.files())] == [1, 4]     # no partial line left


def test_file_closed_output_reports_errors(tmp_path):
    out = FileOutput(str(tmp_path), clock=FakeClock(_local(2024, 3, 1)))
    out.close()
    out.close()
    res = out.publish_batch([_event(1)])
    assert not res[0].ok and "closed" in res[0].error


# --- make_output -------------------------------------------------------------

def test_make_output_picks_the_enabled_one(tmp_path):
    out = make_output({"console": {"enabled": False}, "file": {"path": str(tmp_path), "filename": "x",
                                                                  "rotate_every_kb": 5, "number_of_files": 4}})
    assert isinstance(out, FileOutput)
    assert (out.max_bytes, out.number_of_files, out.filename) == (5 * 1024, 4, "x")
    assert isinstance(make_output({"console": None}), ConsoleOutput)


def test_make_output_accepts_the_config_loaders_mapping(tmp_path):
    # shared/config.py validates output.* with these same tables and hands over dataclasses.asdict()
    from coordinator.config import load_config
    cfg = tmp_path / "pb.yml"
    cfg.write_text("output.file: {path: %s, permissions: '0640', rotate_every_kb: 3, bulk_max_size: 50}\n" % tmp_path)
    out = make_output(load_config(str(cfg)).output)
    assert (out.max_bytes, out.permissions, out.bulk_max_size) == (3 * 1024, 0o640, 50)
    cfg.write_text("output.console.codec.json.pretty: true\n")
    out = make_output(load_config(str(cfg)).output)
    assert out.codec.pretty and out.bulk_max_size == 2048


@pytest.mark.parametrize("cfg, where", [
    ({"console": {"prety": True}}, "output.console.prety"),
    ({"console": {"pretty": "yes"}}, "output.console.pretty"),
    ({"file": {"path": ""}}, "output.file.path"),
    ({"file": {"path": "/tmp/x", "number_of_files": 1}}, "output.file.number_of_files"),
    ({"file": {"path": "/tmp/x", "permissions": "rw"}}, "output.file.permissions"),
    ({"file": {"path": "/tmp/x", "codec": {"json": {"indent": 2}}}}, "output.file.codec.json.indent"),
    ({"console": {}, "file": {"path": "/tmp/x"}}, "output"),
    ({"console": {"enabled": False}}, "output"),
    ({"kafka": {"hosts": ["k:9092"]}}, "output.kafka"),
])
def test_make_output_config_errors_name_the_key(cfg, where):
    with pytest.raises(ConfigError) as ei:
        make_output(cfg)
    assert ei.value.path == where


# --- enrichment --------------------------------------------------------------

def test_enrich_adds_agent_host_ecs_tags_fields():
    en = Enricher("pb-host", "host1", "8.14.0", tags=["web", "prod", "web"],
                  fields={"env": "staging", "team": {"name": "net"}}, fields_under_root=False)
    ev = {"type": "dns", "tags": ["prod", "dns"], "dns": {"id": 7}}
    assert en(ev) is ev
    assert ev["agent"] == {"name": "pb-host", "hostname": "host1", "version": "8.14.0",
                           "type": "packetbeat", "id": en.agent_id, "ephemeral_id": en.ephemeral_id}
    assert ev["host"] == {"name": "pb-host"}
    assert ev["ecs"] == {"version": ECS_VERSION} and ECS_VERSION == "8.0.0"
    assert ev["tags"] == ["prod", "dns", "web"]
    assert ev["fields"] == {"env": "staging", "team": {"name": "net"}}
    assert ev["dns"] == {"id": 7} and ev["type"] == "dns"
    other = en({"type": "http"})
    other["fields"]["team"]["name"] = "changed"          # events do not share the config dicts
    assert en({})["fields"]["team"] == {"name": "net"}
    assert other["tags"] == ["web", "prod"]


def test_enrich_fields_under_root_never_overwrite_protocol_fields():
    en = Enricher("n", "h", "8.0.0", tags=[], fields={"type": "custom", "env": "x",
                                                      "http": {"team": "a", "request": "no"}},
                  fields_under_root=True)
    ev = en({"type": "http", "http": {"request": {"method": "GET"}}, "agent": {"extra": 1},
             "host": {"ip": ["10.0.0.1"]}})
    assert ev["type"] == "http" and ev["env"] == "x"
    assert ev["http"] == {"request": {"method": "GET"}, "team": "a"}
    assert ev["agent"]["extra"] == 1 and ev["agent"]["type"] == "packetbeat"
    assert ev["host"] == {"ip": ["10.0.0.1"], "name": "n"}
    assert "fields" not in ev and "tags" not in ev


def test_agent_id_stable_per_host_and_data_path(tmp_path):
    a = Enricher("n", "h1", "8.0.0")
    b = Enricher("n", "h1", "8.0.0")
    assert a.agent_id == b.agent_id and a.ephemeral_id != b.ephemeral_id
    assert Enricher("n", "h2", "8.0.0").agent_id != a.agent_id
    data = tmp_path / "data"
    first = stable_agent_id("n", "h1", str(data))
    assert json.loads((data / "meta.json").read_text())["uuid"] == first
    assert Enricher("n", "other", "8.0.0", data_path=str(data)).agent_id == first
    (data / "meta.json").write_text("{not json")
    with pytest.raises(ValueError):
        stable_agent_id("n", "h1", str(data))


def test_pipeline_enrich_chunk_file_roundtrip(tmp_path):
    en = Enricher("n", "h", "8.0.0", tags=["t"])
    out = make_output({"file": {"path": str(tmp_path), "rotate_every_kb": 2}},
                      clock=FakeClock(_local(2024, 3, 1)))
    ch = Chunker(chunk_size=16, max_chunk_bytes=4096, flush_after_seconds=1.0)
    now = 0.0
    for i in range(300):
        now += 0.01
        batch = ch.feed(en(_event(i)), now)
        if batch:
            assert all(r.ok for r in out.publish_batch(batch))
    batch = ch.flush()
    if batch:
        assert all(r.ok for r in out.publish_batch(batch))
    out.close()
    got = _read_lines(out.files())
    assert len(out.files()) == 8                      # 7 rotated + active, the rest purged
    seqs = [e["seq"] for e in got]
    assert seqs == list(range(seqs[0], 300))
    assert all(e["agent"]["name"] == "n" and e["tags"] == ["t"] for e in got)


if __name__ == "__main__":      # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
