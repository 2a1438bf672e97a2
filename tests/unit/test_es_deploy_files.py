"""deploy/elasticsearch holds what `packetbeat export template / ilm-policy` print."""
import json

from coordinator.publisher.elasticsearch import DEFAULT_INDEX
from coordinator.setup import ilm_policy, index_template
from tests.helpers import ROOT

DEPLOY = ROOT / "deploy" / "elasticsearch"


def test_deploy_files_match_the_exports():
    """The default: the data stream packetbeat-<version> and its rollover policy."""
    tpl = json.loads((DEPLOY / "index-template.json").read_text())
    assert tpl == index_template(DEFAULT_INDEX) and tpl["data_stream"] == {}
    assert json.loads((DEPLOY / "ilm-policy.json").read_text()) == ilm_policy()
    assert "rollover" in ilm_policy()["policy"]["phases"]["hot"]["actions"]


def test_deploy_files_for_dated_indices_match_the_exports():
    assert json.loads((DEPLOY / "index-template-dated.json").read_text()) == \
        index_template("packetbeat-%{[agent.version]}-%{+yyyy.MM.dd}")
    assert json.loads((DEPLOY / "ilm-policy-dated.json").read_text()) == ilm_policy("dated")
