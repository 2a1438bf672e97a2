"""dissect, syslog and decode_xml on text taken from real events."""
from __future__ import annotations

import pytest

from shared.confutil import ConfigError
from worker.processors import ProcessorError
from tests.unit.procutil import chain, events


def run1(raw, ev):
    return chain(raw).run(ev)


@pytest.fixture
def http():
    return events("http_sample.pcap")


def test_dissect_request_line(http):
    ev = http[1]
    ev["message"] = ev["request"].split("\r\n", 1)[0]          # "POST /api/v1/login HTTP/1.1"
    run1([{"dissect": {"tokenizer": "%{verb} %{path} HTTP/%{version|float}"}}], ev)
    assert ev["dissect"] == {"verb": "POST", "path": "/api/v1/login", "version": 1.1}


def test_dissect_modifiers(http):
    ev = {"message": "a  b c=d [1] x y"}
    run1([{"dissect": {"tokenizer": "%{first->} %{+first} %{*k}=%{&k} [%{?skip}] %{} %{last}", "target_prefix": ""}}], ev)
    assert ev["first"] == "a b" and ev["c"] == "d" and ev["last"] == "y" and "skip" not in ev
    ev = {"message": "2 1"}
    run1([{"dissect": {"tokenizer": "%{+n/2} %{+n/1}"}}], ev)
    assert ev["dissect"]["n"] == "1 2"
    ev = {"message": "  x  |y"}
    run1([{"dissect": {"tokenizer": "%{a}|%{b}", "trim_values": "all"}}], ev)
    assert ev["dissect"] == {"a": "x", "b": "y"}


def test_dissect_failures(http):
    ev = {"message": "no delimiter here"}
    with pytest.raises(ProcessorError):
        run1([{"dissect": {"tokenizer": "%{a}|%{b}"}}], ev)
    assert ev["log"]["flags"] == ["dissect_parsing_error"]
    ev = {"message": "x|y"}
    run1([{"dissect": {"tokenizer": "%{a}|%{b}", "ignore_failure": True, "field": "nope"}}], ev)
    assert "error" not in ev
    ev = {"message": "x|y", "dissect": {"a": "old"}}
    with pytest.raises(ProcessorError, match="override"):
        run1([{"dissect": {"tokenizer": "%{a}|%{b}"}}], ev)
    run1([{"dissect": {"tokenizer": "%{a}|%{b}", "overwrite_keys": True}}], ev)
    assert ev["dissect"] == {"a": "x", "b": "y"}
    with pytest.raises(ConfigError, match="tokenizer"):
        chain([{"dissect": {"tokenizer": "%{a}%{b}"}}])
    with pytest.raises(ConfigError, match="tokenizer"):
        chain([{"dissect": {"tokenizer": "%{a|nosuchtype}"}}])


def test_syslog_rfc5424_and_3164(http):
    ev = {"message": '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 '
                     '[exampleSDID@32473 iut="3" eventSource="Application"] An application event'}
    run1([{"syslog": {}}], ev)
    s = ev["log"]["syslog"]
    assert s["priority"] == 165 and s["facility"]["name"] == "local4" and s["severity"]["name"] == "Notice"
    assert s["hostname"] == "mymachine.example.com" and s["appname"] == "evntslog" and s["msgid"] == "ID47"
    assert "procid" not in s and s["structured_data"] == {"exampleSDID@32473": {"iut": "3", "eventSource": "Application"}}
    assert ev["message"] == "An application event" and ev["@timestamp"] == "2003-10-11T22:14:15.003Z"
    ev = {"message": "<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed for lonvick on /dev/pts/8"}
    run1([{"syslog": {"timezone": "UTC"}}], ev)
    s = ev["log"]["syslog"]
    assert s["facility"]["code"] == 4 and s["severity"]["code"] == 2 and s["appname"] == "su" and s["procid"] == "123"
    assert ev["message"].startswith("'su root'") and ev["@timestamp"].endswith("-10-11T22:14:15.000Z")
    # a real event's text is no syslog message
    ev = http[0]
    ev["message"] = ev["request"]
    with pytest.raises(ProcessorError):
        run1([{"syslog": {"tag": "not_syslog"}}], ev)
    assert "not_syslog" in ev["tags"]
    with pytest.raises(ConfigError, match="timezone"):
        chain([{"syslog": {"timezone": "Mars/Base"}}])


def test_decode_xml():
    xml = ('<catalog><book seq="1"><author>William H. Gaddis</author><title>The Recognitions</title>'
           '<review>One of the great seminal American novels.</review></book></catalog>')
    ev = {"message": xml}
    run1([{"decode_xml": {"field": "message", "target_field": "xml"}}], ev)
    assert ev["xml"] == {"catalog": {"book": {"author": "William H. Gaddis", "title": "The Recognitions",
                                              "review": "One of the great seminal American novels.", "seq": "1"}}}
    ev = {"message": "<A><B>1</B><B>2</B></A>"}
    run1([{"decode_xml": {"field": "message", "target_field": "", "to_lower": False}}], ev)
    assert ev["A"] == {"B": ["1", "2"]}
    ev = {"message": "<a>unclosed"}
    with pytest.raises(ProcessorError):
        run1([{"decode_xml": {"field": "message"}}], ev)
    run1([{"decode_xml": {"field": "message", "ignore_failure": True}}], {"message": "<a>"})
    run1([{"decode_xml": {"field": "nope", "ignore_missing": True}}], {"message": "<a/>"})
    with pytest.raises(ProcessorError, match="deeply nested"):
        run1([{"decode_xml": {"field": "message"}}], {"message": "<a>" * 50000 + "</a>" * 50000})
    bomb = '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa">]><l>&a;</l>'
    with pytest.raises(ProcessorError, match="DTD"):
        run1([{"decode_xml": {"field": "message"}}], {"message": bomb})


def test_syslog_hostile_input_is_linear():
    import time
    c = chain([{"syslog": {}}])
    for m in ("<1>1 - - - - - " + "[a]" * 5000 + "x", "<1>1 - - - - - " + '[a b="\\' * 5000,
              "<1>1 - - - - - [a" + ' b="' * 5000, "<34>Oct 11 22:14:15 h " + "[" * 50000):
        t = time.monotonic()
        with pytest.raises(ProcessorError):
            c.run({"message": m})
        assert time.monotonic() - t < 2.0
    ev = {"message": '<14>1 2024-01-01T00:00:00Z h a 1 - [x@1 k="a\\"b\\]c"][y@2] msg'}
    c.run(ev)
    assert ev["log"]["syslog"]["structured_data"] == {"x@1": {"k": 'a"b]c'}, "y@2": {}} and ev["message"] == "msg"
