# SPDX-License-Identifier: Apache-2.0
"""docs/kafka-security.md shows the ACL table of libs/kafka exactly: its table rows
equal `cwpp-admin acls --print` (the code's table, default prefix cwpp.)."""
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("CWPP_BIN_DIR", REPO / "build" / "bin"))


def test_the_doc_table_is_the_code_table():
    tool = BIN / "cwpp-admin"
    if not tool.exists():
        pytest.skip("cwpp-admin not built")
    env = {k: v for k, v in os.environ.items() if k != "CWPP_TOPIC_PREFIX"}
    printed = subprocess.run([str(tool), "acls", "--print", "--prefix", "cwpp."], env=env,
                             capture_output=True, text=True, check=True, timeout=30).stdout
    want = [ln for ln in printed.splitlines() if ln.startswith("| ")]
    doc = (REPO / "docs" / "kafka-security.md").read_text()
    header = want[0]
    lines = doc.splitlines()
    assert header in lines, "docs/kafka-security.md lacks the ACL table"
    i = lines.index(header)
    got = []
    for ln in lines[i:]:
        if not ln.startswith("| "):
            break
        got.append(ln)
    assert got == want
