"""A real SMTP server on loopback (aiosmtpd) for the email connector tests.

It speaks STARTTLS or implicit TLS with a throwaway certificate, requires AUTH PLAIN/LOGIN
over TLS, can refuse a seeded share of transactions with 451 (at RCPT or DATA) or hang up
mid-transaction, refuses chosen mailboxes with a fixed reply, and counts what it received so
tests can prove every mail arrived exactly once.

    pki = make_test_pki(tmp_path)
    with SmtpSimulator(pki, security="starttls") as sim:
        mailer = SmtpMailer(sim.host, sim.port, username=sim.username, ...)
"""
from __future__ import annotations

import asyncio
import collections
import datetime as dt
import ipaddress
import logging
import random
import socket
import ssl
import threading
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# aiosmtpd warns about its own deprecated attribute on every AUTH; keep test output readable
logging.getLogger("mail.log").setLevel(logging.ERROR)

TEST_USER = "sales-ops@example.com"
TEST_PASSWORD = "s3cret-测试"


# --- throwaway PKI ------------------------------------------------------------------------

@dataclass(frozen=True)
class TestPki:
    """A self-signed CA and a server certificate for 127.0.0.1 / localhost, as PEM files."""

    __test__ = False  # not a pytest test class despite the name

    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


def make_test_pki(directory: Path) -> TestPki:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    # backdate a little so a skewed clock does not make the certificate "not yet valid"
    not_before, not_after = now - dt.timedelta(days=1), now + dt.timedelta(days=2)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "salesops test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    pki = TestPki(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    pki.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return pki


# --- faults -------------------------------------------------------------------------------

@dataclass
class SmtpFaults:
    """Per transaction (decided at MAIL FROM, seeded): refuse with 451 at RCPT or DATA, or hang
    up after the client sent DATA but *before* the server stored the mail (so a retry is not a
    duplicate)."""

    rate_451: float = 0.0
    stages: tuple[str, ...] = ("RCPT", "DATA")
    drop_rate: float = 0.0
    seed: int = 7

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def pick(self) -> str | None:
        """None, "451:RCPT", "451:DATA" or "drop"."""
        with self._lock:
            roll = self._rng.random()
            if roll < self.rate_451:
                return "451:" + self._rng.choice(self.stages)
            if roll < self.rate_451 + self.drop_rate:
                return "drop"
            return None


# --- the server ---------------------------------------------------------------------------

class _TlsAwareSMTP(SMTP):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # aiosmtpd only counts STARTTLS as "TLS" for auth_require_tls; on an implicit-TLS
        # socket the requirement is already met, so AUTH must be offered there too.
        if transport.get_extra_info("ssl_object") is not None:
            self._auth_require_tls = False


class _Controller(Controller):
    """Controller that can bind port 0: it learns the real port before its self-test connect."""

    def factory(self):
        return _TlsAwareSMTP(self.handler, **self.SMTP_kwargs)

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpSimulator:
    """security: "starttls" (plain port, STARTTLS offered), "ssl" (implicit TLS), or "none"
    (plain only, no STARTTLS — AUTH is then never offered because auth_require_tls=True)."""

    def __init__(self, pki: TestPki | None = None, *,
                 security: Literal["starttls", "ssl", "none"] = "starttls",
                 users: dict[str, str] | None = None,
                 auth_required: bool = True,
                 faults: SmtpFaults | None = None,
                 refuse: dict[str, str] | None = None,
                 auth_exclude: tuple[str, ...] = ()) -> None:
        if security != "none" and pki is None:
            raise ValueError("TLS needs a TestPki")
        self.pki = pki
        self.security = security
        self.users = {TEST_USER: TEST_PASSWORD} if users is None else dict(users)
        self.username, self.password = next(iter(self.users.items()), ("", ""))
        self.auth_required = auth_required
        self.faults = faults or SmtpFaults()
        # mailbox (lower-case) -> full reply, e.g. "550 5.1.1 Mailbox unavailable"
        self.refuse = {k.lower(): v for k, v in (refuse or {}).items()}
        self.auth_exclude = auth_exclude  # e.g. ("PLAIN",) to force AUTH LOGIN

        self.lock = threading.Lock()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, tuple[str, ...]]] = []  # (MAIL FROM, RCPT TOs) stored
        self.by_message_id: collections.Counter[str] = collections.Counter()
        self.auth_attempts = 0
        self.auth_failures = 0
        self.mail_commands = 0  # MAIL FROM seen: "nothing sent" means this stays 0
        self.injected: collections.Counter[str] = collections.Counter()
        self._controller: _Controller | None = None

    # --- counting ---------------------------------------------------------------------
    def duplicates(self) -> dict[str, int]:
        """Message-IDs delivered more than once, with their counts."""
        with self.lock:
            return {mid: n for mid, n in self.by_message_id.items() if n > 1}

    # --- aiosmtpd hooks ---------------------------------------------------------------
    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                      mechanism: str, auth_data) -> AuthResult:
        with self.lock:
            self.auth_attempts += 1
        ok = (isinstance(auth_data, LoginPassword)
              and self.users.get(auth_data.login.decode("utf-8", "replace"))
              == auth_data.password.decode("utf-8", "replace"))
        if not ok:
            with self.lock:
                self.auth_failures += 1
            return AuthResult(success=False, handled=False)  # aiosmtpd answers 535
        return AuthResult(success=True, auth_data=auth_data.login)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self.lock:
            self.mail_commands += 1
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        envelope.sim_fault = self.faults.pick()
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if getattr(envelope, "sim_fault", None) == "451:RCPT":
            with self.lock:
                self.injected["451:RCPT"] += 1
            return "451 4.3.0 Temporary local problem, try again later"
        refusal = self.refuse.get(address.lower())
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        fault = getattr(envelope, "sim_fault", None)
        if fault == "451:DATA":
            with self.lock:
                self.injected["451:DATA"] += 1
            return "451 4.3.0 Temporary local problem, try again later"
        if fault == "drop":
            with self.lock:
                self.injected["drop"] += 1
            server.transport.abort()
            # connection_lost cancels this coroutine, so no reply is ever written
            await asyncio.sleep(3600)
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        message = BytesParser(policy=policy.default).parsebytes(content)
        with self.lock:
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, tuple(envelope.rcpt_tos)))
            self.by_message_id[str(message.get("Message-ID", "")).strip()] += 1
        return "250 2.0.0 OK queued"

    # --- lifecycle --------------------------------------------------------------------
    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        assert self._controller is not None, "simulator not started"
        return self._controller.port

    def start(self) -> "SmtpSimulator":
        kwargs: dict = dict(
            hostname=self.host, port=0, server_hostname="smtp.sim.local",
            authenticator=self._authenticate, auth_required=self.auth_required,
            auth_require_tls=True, auth_exclude_mechanism=self.auth_exclude,
            ready_timeout=10.0,
        )
        if self.security == "starttls":
            kwargs["tls_context"] = self.pki.server_context()
            kwargs["require_starttls"] = True
        elif self.security == "ssl":
            kwargs["ssl_context"] = self.pki.server_context()
        self._controller = _Controller(self, **kwargs)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> "SmtpSimulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def free_port() -> int:
    """A loopback port nobody listens on (for 'connection refused' tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
