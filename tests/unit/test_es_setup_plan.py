"""coordinator/setup.py: which mode, which template and policy, from the options."""
from __future__ import annotations

from coordinator.setup import IlmConfig, TemplateConfig, ilm_policy, index_template, plan, setup
from tests.esserver import EsServer


def test_modes_from_index_and_rollover_alias():
    assert plan("pb-%{+yyyy.MM.dd}", version="9.1.0").mode == "dated"
    p = plan("pb-%{[agent.version]}", version="9.1.0")
    assert (p.mode, p.template_pattern, p.template_name, p.policy_name) == \
        ("data_stream", "pb-9.1.0", "packetbeat-9.1.0", "packetbeat")
    p = plan("whatever", IlmConfig(rollover_alias="al-%{[agent.version]}", pattern="000001"), version="9.1.0")
    assert (p.mode, p.write_index, p.alias, p.bootstrap, p.template_pattern) == \
        ("alias", "al-9.1.0", "al-9.1.0", "al-9.1.0-000001", "al-9.1.0-*")
    assert plan("x", IlmConfig(rollover_alias="al")).bootstrap == "<al-{now/d}-000001>"
    assert plan("pb", IlmConfig(enabled=False)).policy_name is None


def test_template_body_per_mode_and_options():
    ds = index_template("pb-%{[agent.version]}")
    assert ds["data_stream"] == {} and ds["template"]["settings"]["index"]["lifecycle"] == {"name": "packetbeat"}
    dated = index_template("pb-%{+yyyy.MM.dd}")
    assert "data_stream" not in dated
    no_ilm = index_template("pb", ilm=IlmConfig(enabled=False),
                            tpl=TemplateConfig(priority=300, pattern="pb*",
                                               settings={"index": {"number_of_shards": 3}, "x": 1}))
    assert "lifecycle" not in no_ilm["template"]["settings"]["index"]
    assert no_ilm["template"]["settings"]["index"]["number_of_shards"] == 3 and no_ilm["template"]["settings"]["x"] == 1
    assert no_ilm["priority"] == 300 and no_ilm["index_patterns"] == ["pb*"]
    assert "rollover" in ilm_policy("alias")["policy"]["phases"]["hot"]["actions"]
    assert "delete" in ilm_policy("dated")["policy"]["phases"]


def test_setup_with_template_and_ilm_disabled_installs_nothing_but_what_is_asked():
    from elasticsearch import Elasticsearch
    with EsServer() as es:
        client = Elasticsearch(es.url)
        said = []
        setup(client, "pb-%{[agent.version]}", said.append, ilm=IlmConfig(enabled=False),
              tpl=TemplateConfig(enabled=False))
        assert said == [] and not es.templates() and not es.policies()
        setup(client, "pb-%{[agent.version]}", said.append, tpl=TemplateConfig(name="t1"))
        assert set(es.templates()) == {"t1"} and set(es.policies()) == {"packetbeat"}
        client.close()
