# SPDX-License-Identifier: Apache-2.0
"""docs/api/openapi.yaml: assembled from its parts, valid OpenAPI 3.1 by a third-party
validator (openapi-spec-validator, installed by deploy/local/install-deps into its own
virtual environment), and listing exactly the routes cwpp-api's route tables serve."""
import os
import re
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "api" / "openapi.yaml"
VENV = Path(os.environ.get("CWPP_TOOLS_VENV", "/var/tmp/cwpp-tools/venv"))
ROUTE = re.compile(r'\{"(GET|POST|DELETE|PUT|PATCH)",\s*"(/[^"]*)"')
BUILTIN = {("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics"),
           ("get", "/api/v1/openapi.yaml")}


def test_the_document_is_assembled_from_its_parts():
    p = subprocess.run(["/usr/bin/python3", str(REPO / "docs" / "api" / "assemble"), "--check"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_a_third_party_validator_accepts_the_document():
    tool = VENV / "bin" / "openapi-spec-validator"
    assert tool.exists(), f"{tool} missing: run deploy/local/install-deps"
    p = subprocess.run([str(tool), str(DOC)], capture_output=True, text=True)
    assert p.returncode == 0 and "OK" in p.stdout, p.stdout + p.stderr


def served_routes():
    routes = set()
    for f in sorted((REPO / "services" / "api").glob("*.c")):
        for method, path in ROUTE.findall(f.read_text()):
            routes.add((method.lower(), path))
    return routes


def test_every_route_served_is_documented_and_every_documented_route_is_served():
    doc = yaml.safe_load(DOC.read_text())
    documented = {(m, p) for p, item in doc["paths"].items() for m in item
                  if m in ("get", "post", "delete", "put", "patch")}
    served = served_routes() | BUILTIN
    assert len(served) > len(BUILTIN)
    assert served - documented == set(), "served but not in docs/api/openapi.yaml"
    assert documented - served == set(), "documented but not served"


def test_every_route_but_the_public_ones_needs_authentication():
    doc = yaml.safe_load(DOC.read_text())
    public = {(m, p) for p, item in doc["paths"].items() for m, op in item.items()
              if isinstance(op, dict) and op.get("security") == []}
    assert public == BUILTIN | {("post", "/api/v1/login")}
    assert doc["security"] == [{"bearer": []}, {"session": []}]
