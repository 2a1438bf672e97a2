"""deploy/elasticsearch holds what `packetbeat export template / ilm-policy` print."""
import json

from coordinator.publisher.elasticsearch import DEFAULT_INDEX
from coordinator.setup import ilm_policy, index_template
from tests.helpers import ROOT

DEPLOY = ROOT / "deploy" / "elasticsearch"


def test_deploy_files_match_the_exports():
    assert json.loads((DEPLOY / "index-template.json").read_text()) == index_template(DEFAULT_INDEX)
    assert json.loads((DEPLOY / "ilm-policy.json").read_text()) == ilm_policy()


def test_deploy_files_for_data_streams_match_the_exports():
    assert json.loads((DEPLOY / "index-template-datastream.json").read_text()) == \
        index_template("packetbeat-%{[agent.version]}")
    assert json.loads((DEPLOY / "ilm-policy-rollover.json").read_text()) == ilm_policy("data_stream")
