"""TLS and SASL with real clients: confluent-kafka (librdkafka 2.x from PyPI), kafka-python and
kcat (Debian's librdkafka 2.0.2) against SASL_SSL with PLAIN and SCRAM-SHA-256/512, against
SASL_PLAINTEXT, and against SSL with client certificates; wrong passwords, unknown users, a
plaintext client on a TLS port and garbage before authentication are refused and leave the
broker serving.

Certificates come from `openssl` at test time (a throwaway CA, a server certificate for
127.0.0.1/localhost and a client certificate); SCRAM users are created with the cluster by
`--add-scram`, PLAIN users come from the listener's JAAS line, both as Kafka configures them.
"""

import shutil
import socket
import ssl
import struct
import subprocess
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer

from conftest import Broker

KCAT = shutil.which("kcat") or "kcat"
PLAIN_USERS = {"admin": "admin-secret", "alice": "alice-secret"}
SCRAM_USERS = {"SCRAM-SHA-256": ("scram256", "pw-256"), "SCRAM-SHA-512": ("scram512", "pw-512")}
REAUTH_MS = 2000


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA, a server key store (key + chain in one PEM, Kafka's PEM key store) and a client
    certificate signed by the CA."""
    d = tmp_path_factory.mktemp("certs")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=strom-test-ca", cwd=d)
    for name, subject, ext in [
        ("server", "/CN=localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
        ("client", "/O=Strom/OU=eng/CN=client-app", "extendedKeyUsage=clientAuth"),
    ]:
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=d)
        (d / f"{name}.ext").write_text(ext + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
    (d / "server-keystore.pem").write_text((d / "server.key").read_text() + (d / "server.pem").read_text())
    return d


def sign_server_certificate(d, name, subject):
    """A server key and certificate for 127.0.0.1/localhost signed by the test CA."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=d)
    (d / f"{name}.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
    return (d / f"{name}.key").read_text() + (d / f"{name}.pem").read_text()


def jaas_plain():
    users = " ".join(f'user_{u}="{p}"' for u, p in PLAIN_USERS.items())
    return f'org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" {users};'


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory, certs):
    """One broker with PLAINTEXT (for setup), SASL_SSL, SASL_PLAINTEXT and SSL (client
    certificates required) listeners."""
    data = tmp_path_factory.mktemp("secure") / "data"
    args = [
        "--set", "listeners=PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
        "--set", "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "--set", f"listener.name.sasl_ssl.plain.sasl.jaas.config={jaas_plain()}",
        "--set", f"listener.name.sasl_plaintext.plain.sasl.jaas.config={jaas_plain()}",
        "--set", f"ssl.keystore.location={certs / 'server-keystore.pem'}",
        "--set", f"ssl.truststore.location={certs / 'ca.pem'}",
        "--set", "listener.name.ssl.ssl.client.auth=required",
        "--set", "ssl.principal.mapping.rules=RULE:^CN=([^,]*),OU=eng.*$/$1/,DEFAULT",
        # SASL_PLAINTEXT sessions last 2 s: clients must re-authenticate (KIP-368).
        "--set", f"listener.name.sasl_plaintext.connections.max.reauth.ms={REAUTH_MS}",
    ]
    for mechanism, (user, password) in SCRAM_USERS.items():
        args += ["--add-scram", f"{mechanism}=[name={user},password={password}]"]
    b = Broker(data, args)
    b.start()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("secured", 1, 1)])["secured"].result(30)
    yield b
    b.stop()
    assert b.errors_logged() == [], "the broker logged errors"


def address(broker, listener):
    return f"127.0.0.1:{broker.listeners[listener]}"


def librdkafka_config(broker, certs, listener, mechanism=None, user=None, password=None):
    conf = {"bootstrap.servers": address(broker, listener), "security.protocol": listener}
    if listener.endswith("SSL"):
        conf["ssl.ca.location"] = str(certs / "ca.pem")
    if mechanism:
        conf.update({"sasl.mechanisms": mechanism, "sasl.username": user, "sasl.password": password})
    return conf


def round_trip_confluent(conf, topic="secured"):
    """Produces one record and reads it back; returns its value."""
    value = uuid.uuid4().hex.encode()
    p = Producer(conf)
    p.produce(topic, value)
    assert p.flush(30) == 0, "the record was not delivered"
    c = Consumer({**conf, "group.id": uuid.uuid4().hex, "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    seen = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            m = c.poll(1.0)
            if m is None:
                continue
            assert m.error() is None, m.error()
            seen.append(m.value())
            if value in seen:
                return value
    finally:
        c.close()
    raise AssertionError(f"never read back {value!r}; saw {len(seen)} records")


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_confluent_kafka_sasl_ssl(secure_broker, certs, mechanism):
    user, password = ("alice", PLAIN_USERS["alice"]) if mechanism == "PLAIN" else SCRAM_USERS[mechanism]
    round_trip_confluent(librdkafka_config(secure_broker, certs, "SASL_SSL", mechanism, user, password))


def test_confluent_kafka_sasl_plaintext_scram(secure_broker, certs):
    user, password = SCRAM_USERS["SCRAM-SHA-512"]
    round_trip_confluent(librdkafka_config(secure_broker, certs, "SASL_PLAINTEXT", "SCRAM-SHA-512", user, password))


def test_librdkafka_re_authenticates_before_its_session_expires(secure_broker, certs):
    """With connections.max.reauth.ms the broker gives each SASL session a lifetime; a
    producer that keeps one connection for several lifetimes logs in again on it and never
    sees the connection closed for an expired session."""
    user, password = SCRAM_USERS["SCRAM-SHA-256"]
    conf = librdkafka_config(secure_broker, certs, "SASL_PLAINTEXT", "SCRAM-SHA-256", user, password)
    p = Producer(conf)
    delivered = []
    deadline = time.monotonic() + 3 * REAUTH_MS / 1000
    while time.monotonic() < deadline:
        p.produce("secured", b"reauth", on_delivery=lambda err, msg: delivered.append(err))
        p.poll(0.25)
    assert p.flush(30) == 0
    assert delivered and all(err is None for err in delivered), delivered
    expired = [line for line in secure_broker.log_lines if "expired (connections.max.reauth.ms)" in line]
    assert expired == [], expired


def test_confluent_kafka_ssl_with_client_certificate(secure_broker, certs):
    conf = librdkafka_config(secure_broker, certs, "SSL")
    conf.update({"ssl.certificate.location": str(certs / "client.pem"), "ssl.key.location": str(certs / "client.key")})
    round_trip_confluent(conf)


def kafka_python_config(broker, certs, listener, mechanism=None, user=None, password=None):
    conf = {"bootstrap_servers": address(broker, listener), "security_protocol": listener}
    if listener.endswith("SSL"):
        conf["ssl_cafile"] = str(certs / "ca.pem")
    if mechanism:
        conf.update({"sasl_mechanism": mechanism, "sasl_plain_username": user, "sasl_plain_password": password})
    return conf


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_kafka_python_sasl_ssl(secure_broker, certs, mechanism):
    user, password = ("alice", PLAIN_USERS["alice"]) if mechanism == "PLAIN" else SCRAM_USERS[mechanism]
    conf = kafka_python_config(secure_broker, certs, "SASL_SSL", mechanism, user, password)
    value = uuid.uuid4().hex.encode()
    producer = KafkaProducer(**conf)
    producer.send("secured", value).get(timeout=30)
    producer.close()
    consumer = KafkaConsumer("secured", group_id=uuid.uuid4().hex, auto_offset_reset="earliest",
                             consumer_timeout_ms=30000, **conf)
    try:
        assert any(m.value == value for m in consumer), "never read the record back"
    finally:
        consumer.close()


def test_kafka_python_ssl_with_client_certificate(secure_broker, certs):
    conf = kafka_python_config(secure_broker, certs, "SSL")
    conf.update({"ssl_certfile": str(certs / "client.pem"), "ssl_keyfile": str(certs / "client.key")})
    value = uuid.uuid4().hex.encode()
    producer = KafkaProducer(**conf)
    producer.send("secured", value).get(timeout=30)
    producer.close()


def kcat(broker, certs, listener, *args, extra=(), stdin=None):
    cmd = [KCAT, "-b", address(broker, listener), "-X", "api.version.request=true", "-X", f"security.protocol={listener}",
           "-X", f"ssl.ca.location={certs / 'ca.pem'}", *extra, *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, timeout=60)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_kcat_sasl_ssl(secure_broker, certs, mechanism):
    user, password = ("alice", PLAIN_USERS["alice"]) if mechanism == "PLAIN" else SCRAM_USERS[mechanism]
    sasl = ["-X", f"sasl.mechanisms={mechanism}", "-X", f"sasl.username={user}", "-X", f"sasl.password={password}"]
    value = uuid.uuid4().hex
    produced = kcat(secure_broker, certs, "SASL_SSL", "-P", "-t", "secured", extra=sasl, stdin=value.encode())
    assert produced.returncode == 0, produced.stderr.decode()
    consumed = kcat(secure_broker, certs, "SASL_SSL", "-C", "-t", "secured", "-o", "beginning", "-e", extra=sasl)
    assert consumed.returncode == 0, consumed.stderr.decode()
    assert value in consumed.stdout.decode()


def test_kcat_ssl_with_client_certificate(secure_broker, certs):
    mtls = ["-X", f"ssl.certificate.location={certs / 'client.pem'}", "-X", f"ssl.key.location={certs / 'client.key'}"]
    listed = kcat(secure_broker, certs, "SSL", "-L", "-J", extra=mtls)
    assert listed.returncode == 0, listed.stderr.decode()
    assert '"secured"' in listed.stdout.decode()


def test_ssl_listener_refuses_a_client_without_a_certificate(secure_broker, certs):
    listed = kcat(secure_broker, certs, "SSL", "-L", "-m", "5")
    assert listed.returncode != 0


@pytest.mark.parametrize("user,password", [("alice", "wrong"), ("nobody", "alice-secret"),
                                           ("scram256", "wrong"), ("ghost", "pw-256")])
def test_wrong_credentials_are_refused(secure_broker, certs, user, password):
    mechanism = "PLAIN" if user in ("alice", "nobody") else "SCRAM-SHA-256"
    assert authentication_error(librdkafka_config(secure_broker, certs, "SASL_SSL", mechanism, user, password))
    assert_still_serving(secure_broker)


def authentication_error(conf):
    """The error librdkafka reports for a connection with these settings, within 20 s; None
    if it reports none."""
    errors = []
    p = Producer({**conf, "error_cb": errors.append})
    for _ in range(20):
        p.poll(1.0)
        auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
        if auth:
            return auth[0]
    return None


def test_a_plaintext_client_on_a_tls_port_is_refused(secure_broker, certs):
    errors = []
    admin = AdminClient({"bootstrap.servers": address(secure_broker, "SASL_SSL"), "error_cb": errors.append})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)
    assert_still_serving(secure_broker)


def frame(api_key, version, correlation_id, body=b""):
    client_id = b"raw"
    header = struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def closed_without_answer(sock):
    """True when the broker closed the connection without sending a byte."""
    sock.settimeout(10)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_requests_before_sasl_authentication_are_refused(secure_broker):
    port = secure_broker.listeners["SASL_PLAINTEXT"]
    # A Metadata request (v1, all topics) before any handshake: the connection closes.
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(frame(3, 1, 7, struct.pack(">i", -1)))
        assert closed_without_answer(s)
    # A frame larger than sasl.server.max.receive.size announced before authentication.
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(struct.pack(">i", 600 * 1024) + b"\x00" * 64)
        assert closed_without_answer(s)
    # Garbage bytes.
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"\x00\x00\x00\x10GET / HTTP/1.1\r\n\r\n")
        assert closed_without_answer(s)
    # ApiVersions is served before authentication.
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(frame(18, 0, 9))
        s.settimeout(10)
        size = struct.unpack(">i", s.recv(4))[0]
        assert size > 0
    assert_still_serving(secure_broker)


def test_an_unoffered_mechanism_is_refused(secure_broker, certs):
    conf = librdkafka_config(secure_broker, certs, "SASL_SSL", "OAUTHBEARER", None, None)
    conf.pop("sasl.username")
    conf.pop("sasl.password")
    conf["enable.sasl.oauthbearer.unsecure.jwt"] = True
    error = authentication_error(conf)
    assert error is not None and "OAUTHBEARER" in error.str(), error
    assert_still_serving(secure_broker)


def assert_still_serving(broker):
    md = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=15)
    assert "secured" in md.topics
    assert broker.proc.poll() is None


def test_metadata_advertises_the_listener_the_client_used(secure_broker, certs):
    user, password = SCRAM_USERS["SCRAM-SHA-256"]
    md = AdminClient(librdkafka_config(secure_broker, certs, "SASL_SSL", "SCRAM-SHA-256", user, password)).list_topics(timeout=15)
    ports = {b.port for b in md.brokers.values()}
    assert ports == {secure_broker.listeners["SASL_SSL"]}


def served_certificate_subject(port, certs):
    context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            return dict(item[0] for item in tls.getpeercert()["subject"])["commonName"]


def test_a_renewed_certificate_is_served_without_a_restart(tmp_path, certs):
    """The key store file is replaced; new connections get the new certificate while the
    broker keeps running (it checks its files every few seconds)."""
    keystore = tmp_path / "keystore.pem"
    keystore.write_text(sign_server_certificate(certs, "first", "/CN=first"))
    b = Broker(tmp_path / "data", [
        "--set", "listeners=PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
        "--set", f"ssl.keystore.location={keystore}",
    ]).start()
    try:
        port = b.listeners["SSL"]
        assert served_certificate_subject(port, certs) == "first"
        renewed = tmp_path / "keystore.pem.new"
        renewed.write_text(sign_server_certificate(certs, "second", "/CN=second"))
        renewed.replace(keystore)
        deadline = time.monotonic() + 30
        while served_certificate_subject(port, certs) != "second":
            assert time.monotonic() < deadline, "the renewed certificate was never served"
            time.sleep(0.5)
        assert any("reloaded the TLS key and trust stores" in line for line in b.log_lines)
    finally:
        b.stop()
    assert b.errors_logged() == []
