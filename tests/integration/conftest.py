# SPDX-License-Identifier: Apache-2.0
"""pytest fixtures: a fresh topic prefix per test (topics created by cwpp-admin on the
real local broker) and a service factory that stops everything it started."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import cwpp_testlib as t  # noqa: E402


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
