# SPDX-License-Identifier: Apache-2.0
"""The broker authenticates every client (SASL/SCRAM-SHA-512) and authorizes it with the
ACLs of libs/kafka's table (docs/kafka-security.md), created for the test's prefix by
`cwpp-admin acls --prefix` (the prefix fixture): no anonymous client, no wrong password,
and each service principal only where its table row lets it."""
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer

import cwpp_testlib as t

pytestmark = pytest.mark.skipif(not t.KAFKA_SASL, reason="CWPP_KAFKA_SASL=0: no authentication")


def produce_error(topic, auth, timeout=20):
    """Produces one record to topic with client settings auth; returns the delivery error
    code (None when delivered), or the error the client itself reported."""
    errs = []
    result = {}
    conf = {"bootstrap.servers": t.BROKERS, "message.timeout.ms": timeout * 1000 // 2,
            "error_cb": errs.append, **auth}
    p = Producer(conf)

    def dr(err, _msg):
        result["err"] = err
    p.produce(topic, b"v", key=b"k", on_delivery=dr)
    p.flush(timeout)
    if "err" not in result:
        return errs[0].code() if errs else "no delivery report"
    return None if result["err"] is None else result["err"].code()


def consume_error(topic, auth, timeout=20):
    """Subscribes to topic with auth; returns the first error code polled (None: none)."""
    # a group the principal may join (the test's groups are named after its prefix), so
    # that the topic is what is refused
    c = Consumer({"bootstrap.servers": t.BROKERS, "group.id": topic + "-acl-" + uuid.uuid4().hex,
                  "auto.offset.reset": "earliest", **auth})
    try:
        c.subscribe([topic])
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is not None:
                return m.error().code()
        return None
    finally:
        c.close()


def anonymous():
    """No security settings: PLAINTEXT to the SASL listener."""
    return {}


def test_an_anonymous_client_cannot_produce_commands_nor_actions(prefix):
    for topic in ("commands", "actions"):
        # no SASL on a SASL listener: the broker closes the connection, nothing delivered
        err = produce_error(prefix + topic, anonymous(), timeout=10)
        assert err is not None
        assert err in (KafkaError._TRANSPORT, KafkaError._MSG_TIMED_OUT,
                       KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT), err


def test_a_wrong_password_fails_authentication(prefix):
    errs = []
    p = Producer({"bootstrap.servers": t.BROKERS, "error_cb": errs.append,
                  "message.timeout.ms": 5000,
                  **dict(t.kafka_auth("api"), **{"sasl.password": "not-the-password"})})
    p.produce(prefix + "commands", b"v")
    p.flush(10)
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errs), errs
    assert any("SASL authentication" in e.str() for e in errs), [e.str() for e in errs]


def test_ingest_cannot_produce_commands_nor_actions(prefix):
    for topic in ("commands", "actions"):
        assert produce_error(prefix + topic, t.kafka_auth("ingest")) == \
            KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_the_api_produces_commands_but_not_actions(prefix):
    assert produce_error(prefix + "commands", t.kafka_auth("api")) is None
    assert produce_error(prefix + "actions", t.kafka_auth("api")) == \
        KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_the_responder_produces_actions(prefix):
    assert produce_error(prefix + "actions", t.kafka_auth("responder")) is None


def test_no_read_without_a_read_acl(prefix):
    assert consume_error(prefix + "actions", t.kafka_auth("ingest")) == \
        KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_the_enforcer_reads_actions_and_writes_action_results(prefix):
    t.produce(prefix + "actions", [b"a1"], keys=[b"k"])
    c = Consumer({"bootstrap.servers": t.BROKERS, "group.id": f"cwpp-enforcer-it-{uuid.uuid4().hex}",
                  "auto.offset.reset": "earliest", **t.kafka_auth("enforcer")})
    try:
        c.subscribe([prefix + "actions"])
        deadline, got = time.time() + 30, None
        while time.time() < deadline and got is None:
            m = c.poll(0.5)
            if m is not None:
                assert m.error() is None, m.error()
                got = m.value()
        assert got == b"a1"
    finally:
        c.close()
    assert produce_error(prefix + "action-results", t.kafka_auth("enforcer")) is None
    assert produce_error(prefix + "commands", t.kafka_auth("enforcer")) == \
        KafkaError.TOPIC_AUTHORIZATION_FAILED
