# SPDX-License-Identifier: Apache-2.0
"""The fixtures every suite on the real stack uses (tests/integration and tests/browser
import them into their conftest.py): a fresh topic prefix per test (topics created by
cwpp-admin on the real local broker), its topics deleted when the test or module ends,
and a service factory that stops everything it started."""
import pytest

import cwpp_testlib as t


@pytest.fixture(scope="module", autouse=True)
def _delete_module_topics():
    """Deletes the topics a module's fixtures created, when the module ends."""
    first = len(t.CREATED_PREFIXES)
    yield
    t.stop_apis_of(t.CREATED_PREFIXES[first:])
    t.delete_topics(t.CREATED_PREFIXES[first:])
    del t.CREATED_PREFIXES[first:]


@pytest.fixture(autouse=True)
def _delete_test_topics():
    """Deletes the topics a test created, when it ends (after its services stopped: this
    fixture is set up before the test's others, so it is torn down after them)."""
    first = len(t.CREATED_PREFIXES)
    yield
    t.stop_apis_of(t.CREATED_PREFIXES[first:])
    t.delete_topics(t.CREATED_PREFIXES[first:])
    del t.CREATED_PREFIXES[first:]


@pytest.fixture
def prefix():
    p = t.new_prefix()
    t.create_topics(p, partitions=3)
    return p


@pytest.fixture
def services(tmp_path):
    started = []

    def make(name, prefix, **kw):
        s = t.Service(name, prefix, tmp_path, **kw)
        started.append(s)
        return s

    yield make
    for s in started:
        if s.proc is not None and s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait(10)
