# SPDX-License-Identifier: Apache-2.0
"""pytest fixtures of the integration tests: those of cwpp_fixtures.py (a fresh topic
prefix per test, its topics deleted afterwards, a service factory that stops everything
it started)."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from cwpp_fixtures import _delete_module_topics, _delete_test_topics, prefix, services  # noqa: E402,F401
