"""packetbeat.procs.monitored: only the listed processes are attributed."""
from __future__ import annotations

import os

import pytest

from coordinator.config import validate_tree
from shared.confutil import ConfigError
from shared.procs import ProcessCache, make_tagger, monitored_filter, read_process


def test_filter_matches_the_command_line_of_a_real_process():
    me = read_process(os.getpid())
    assert me is not None and me["args"]
    word = os.path.basename(me["args"][0])              # e.g. python3.11
    assert monitored_filter([{"process": "x", "cmdline_grep": word}])(me)
    assert monitored_filter([{"process": word, "cmdline_grep": ""}])(me)      # grep defaults to the name
    assert not monitored_filter([{"process": "nginx-not-here"}])(me)
    assert monitored_filter([]) is None


def test_cache_attributes_only_monitored_processes():
    me = read_process(os.getpid())
    word = os.path.basename(me["args"][0])
    assert ProcessCache(accept=monitored_filter([{"process": word}])).get(os.getpid())["pid"] == os.getpid()
    assert ProcessCache(accept=monitored_filter([{"process": "nginx-not-here"}])).get(os.getpid()) is None


def test_config_carries_the_list_to_the_tagger():
    s = validate_tree({"output": {"console": {}}, "packetbeat": {"procs": {
        "enabled": True, "monitored": [{"process": "mysqld", "cmdline_grep": "mysqld"}, {"process": "nginx"}]}}})
    assert s.procs["monitored"] == [{"process": "mysqld", "cmdline_grep": "mysqld"},
                                    {"process": "nginx", "cmdline_grep": ""}]
    tagger = make_tagger(s.procs)
    assert tagger.processes.accept({"args": ["/usr/sbin/nginx", "-g"]})
    assert not tagger.processes.accept({"args": ["/usr/bin/redis-server"]})
    with pytest.raises(ConfigError, match=r"packetbeat.procs.monitored\[0\]"):
        validate_tree({"output": {"console": {}}, "packetbeat": {"procs": {"monitored": [{"cmdline_grep": ""}]}}})
    with pytest.raises(ConfigError, match=r"packetbeat.procs.monitored\[0\].pid"):
        validate_tree({"output": {"console": {}}, "packetbeat": {"procs": {"monitored": [{"pid": 1}]}}})
