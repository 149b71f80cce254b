"""The deployment a promoted Azure OpenAI model is served by, held to the ARM REST spec (2025-09-01): the body
the SDK sends names the model and the account that trained it as `properties.model.source`, a documented
member of DeploymentModel (the spec: "Deployment model source ARM resource ID")."""

from __future__ import annotations

import json

from tests.fixtures.contracts import contracts_dir

SOURCE = ("/subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups/ftops-staging-rg/providers/"
          "Microsoft.CognitiveServices/accounts/ftops-staging-openai")


def test_the_promoted_deployment_body_uses_only_spec_members():
    from azure.mgmt.cognitiveservices.models import Deployment, DeploymentModel, DeploymentProperties, Sku

    spec = json.loads((contracts_dir("azure") / "arm-2025-09-01.cognitiveservices.json").read_text())
    definitions = spec["definitions"]
    body = Deployment(sku=Sku(name="Standard", capacity=1), properties=DeploymentProperties(model=DeploymentModel(
        format="OpenAI", name="gpt-4.1-mini-2025-04-14.ft-abc", version="1", source=SOURCE))).serialize()
    model = body["properties"]["model"]
    assert model["source"] == SOURCE
    allowed = definitions["DeploymentModel"]["properties"]
    assert set(model) <= {k for k, v in allowed.items() if not v.get("readOnly")}
    assert allowed["source"]["type"] == "string" and "source ARM resource ID" in allowed["source"]["description"]
    assert set(body["properties"]) <= set(definitions["DeploymentProperties"]["properties"])
