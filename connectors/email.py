"""Mail to customers, finance and managers: an .eml outbox (embedded default) and SMTP.

Both mailers build the same MIME message with `build_message`: UTF-8 throughout, Chinese
display names and subjects as RFC 2047 encoded words, Chinese attachment names twice (RFC 2231
`filename*` and an RFC 2047 Content-Type `name`, for clients that read only one of them), and
a Message-ID derived from the caller's idempotency key, so a resend of the
same business mail carries the same Message-ID and is recognisable (by us and by receivers).
Its right-hand side is the sender's own mail domain: the keys (quote codes, to-do keys) repeat
from one company's hub to the next, and a shared domain would give two companies' different
mails one Message-ID, the second dropped as a duplicate by a receiver that dedupes.

SMTP itself has no idempotency: a mail the server accepted cannot be "un-sent". The caller
records the effect (DESIGN.md, "Side effects happen once") and calls `send` in its own small
task; `SmtpMailer` retries only failures where the server did *not* accept the mail. A copy
recipient the server refuses for good (a closed mailbox), or defers longer than the caller
waits (a full one), does not keep the mail from the others: `send` returns a `SentMail`
naming the refused addresses, for a person to fix.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import smtplib
import socket
import ssl
import urllib.parse
from dataclasses import dataclass
from email import policy as email_policy
from email.header import Header
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, getaddresses, parseaddr
from pathlib import Path
from typing import Literal, Protocol

from pydantic import SecretStr

from connectors.base import PermanentError, TransientError, transient_retry
from connectors.files import write_atomically

log = logging.getLogger(__name__)

PROVIDER = "smtp"
MESSAGE_ID_DOMAIN = "salesops.local"
# China has no DST: a fixed offset avoids depending on the tz database being installed.
BUSINESS_TZ = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")


# --- value types ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mime_type: str = "application/pdf"


def _as_tuple(value) -> tuple:
    # a lone address string must not become a tuple of characters
    if value is None:
        return ()
    if isinstance(value, (str, Attachment)):
        return (value,)
    return tuple(value)


@dataclass(frozen=True)
class OutgoingMail:
    idempotency_key: str
    to: tuple[str, ...]
    subject: str
    text: str
    cc: tuple[str, ...] = ()
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()
    # the caller has waited long enough for a copy recipient the server defers (4xx: a full
    # mailbox lasts days): he no longer keeps the mail from the others, and is named in
    # `SentMail.refused` like a refusal for good
    give_up_deferred_cc: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "to", _as_tuple(self.to))
        object.__setattr__(self, "cc", _as_tuple(self.cc))
        object.__setattr__(self, "attachments", _as_tuple(self.attachments))
        if not self.idempotency_key:
            raise ValueError("OutgoingMail needs an idempotency_key")
        if not self.to:
            raise ValueError("OutgoingMail needs at least one recipient in `to`")


class SentMail(str):
    """What `send` returns: the mail's Message-ID (a str, as callers store it) and `refused`,
    the recipients the server refused for good, or still defers when the caller gave up
    waiting (`OutgoingMail.give_up_deferred_cc`) ({address: its reply}), while it accepted
    the main ones (`to`) and delivered to everybody else. Empty for a mail everybody got."""

    refused: dict[str, str]

    def __new__(cls, message_id: str, refused: dict[str, str] | None = None) -> "SentMail":
        sent = super().__new__(cls, message_id)
        sent.refused = dict(refused or {})
        return sent


class RecipientsRefused(PermanentError):
    """The server refused a main recipient (`to`) for good: nobody got the mail. `refused`
    names every address refused ({address: its reply}), so a person can fix them."""

    def __init__(self, message: str, refused: dict[str, str], code: str) -> None:
        super().__init__(message, provider=PROVIDER, code=code)
        self.refused = refused

    def __reduce__(self):  # pickled (a Prefect state) with what it is made from
        return type(self), (str(self), self.refused, self.code)


class Mailer(Protocol):
    def send(self, mail: OutgoingMail) -> str:
        """Deliver the mail; return its Message-ID (the same for the same idempotency key),
        a `SentMail` when some copy recipients were refused for good."""
        ...


# --- building the message -------------------------------------------------------------------

def key_hash(idempotency_key: str) -> str:
    return hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]


def message_id_for(idempotency_key: str, domain: str = MESSAGE_ID_DOMAIN) -> str:
    return f"<{key_hash(idempotency_key)}@{domain}>"


def sender_domain(mail_from: str) -> str:
    """The domain of the sender's address (lower case), MESSAGE_ID_DOMAIN when it has none
    usable in a Message-ID."""
    address = parseaddr(mail_from)[1]
    local, at, domain = address.rpartition("@")
    domain = domain.strip().lower()
    usable = local and at and domain.isascii() and all(
        c.isalnum() or c in "-." for c in domain) and "." in domain
    return domain if usable else MESSAGE_ID_DOMAIN


def build_message(mail: OutgoingMail, mail_from: str, *, now: dt.datetime | None = None,
                  message_id_domain: str | None = None) -> EmailMessage:
    """The MIME message for `mail`; its Message-ID's domain is the sender's unless given.
    Raises ValueError on malformed input (e.g. a header value with a line break): retrying
    cannot fix that."""
    message_id_domain = message_id_domain or sender_domain(mail_from)
    msg = EmailMessage(policy=MESSAGE_POLICY)
    msg["From"] = mail_from
    msg["To"] = ", ".join(mail.to)
    if mail.cc:
        msg["Cc"] = ", ".join(mail.cc)
    msg["Subject"] = mail.subject
    msg["Date"] = format_datetime((now or dt.datetime.now(BUSINESS_TZ)))
    msg["Message-ID"] = message_id_for(mail.idempotency_key, message_id_domain)
    # base64 keeps Chinese bodies 7-bit clean for servers without 8BITMIME
    msg.set_content(mail.text, charset="utf-8", cte="base64")
    if mail.html is not None:
        msg.add_alternative(mail.html, subtype="html", charset="utf-8", cte="base64")
    if mail.attachments:
        msg.make_mixed()
    for att in mail.attachments:
        msg.attach(_attachment_part(att))
    return msg


# headers the application sets are folded at 78 as usual; `refold_source="none"` only keeps
# the attachment headers `_attachment_part` folds itself as they are
MESSAGE_POLICY = email_policy.SMTP.clone(refold_source="none")
# a header line may be up to 998 characters long (RFC 5322 2.1.1)
MAX_HEADER_LINE = 998


def _attachment_part(att: Attachment) -> EmailMessage:
    """An attachment whose name every mail client reads: the RFC 2231 `filename*` on one line
    (the email package splits a long one into `filename*0*`, `filename*1*` continuations, the
    form clients read least) and the same name as RFC 2047 encoded words in the Content-Type
    `name`, all that Outlook and Lotus Notes read (and what Foxmail and QQ Mail send)."""
    maintype, _, subtype = att.mime_type.partition("/")
    maintype, subtype = maintype or "application", subtype or "octet-stream"
    filename = "filename*=utf-8''" + urllib.parse.quote(att.filename, safe="")
    if att.filename.isascii() or len(filename) + 1 > MAX_HEADER_LINE:
        # a plain filename="…" every client reads; or absurdly long: the continuations
        part = EmailMessage(policy=MESSAGE_POLICY)
        part.set_content(att.content, maintype=maintype, subtype=subtype,
                         disposition="attachment", filename=att.filename)
        return part
    # the encoded words on lines of their own: a line of them stays within 76 characters
    name = Header(att.filename, "utf-8", maxlinelen=68).encode(splitchars="", linesep="\r\n")
    head = (f"Content-Type: {maintype}/{subtype};\r\n name=\"{name}\"\r\n"
            f"Content-Transfer-Encoding: base64\r\n"
            f"Content-Disposition: attachment;\r\n {filename}\r\n\r\n")
    body = base64.encodebytes(att.content).replace(b"\n", b"\r\n")
    return BytesParser(policy=MESSAGE_POLICY).parsebytes(head.encode("ascii") + body)


def _envelope_address(header_value: str) -> str:
    address = parseaddr(header_value)[1]
    if not address or "@" not in address:
        raise PermanentError(f"not a mail address: {header_value!r}", provider=PROVIDER,
                             code="address")
    if not address.isascii():
        # we do not negotiate SMTPUTF8; an internationalised mailbox needs a person
        raise PermanentError(f"non-ASCII mailbox not supported: {address!r}",
                             provider=PROVIDER, code="address")
    return address


def _recipients(mail: OutgoingMail) -> list[str]:
    seen: dict[str, str] = {}
    for _, address in getaddresses(list(mail.to) + list(mail.cc)):
        if address:
            seen.setdefault(address.lower(), _envelope_address(address))
    return list(seen.values())


def _build(mail: OutgoingMail, mail_from: str, domain: str) -> EmailMessage:
    try:
        return build_message(mail, mail_from, message_id_domain=domain)
    except ValueError as exc:  # bad header / address: a person must fix the input
        raise PermanentError(f"cannot build mail {mail.idempotency_key!r}: {exc}",
                             provider=PROVIDER, code="message") from exc


# --- embedded default: an .eml outbox -------------------------------------------------------

@dataclass(frozen=True)
class StoredMail:
    path: Path
    message: EmailMessage

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])


class OutboxMailer:
    """Writes each mail as `<outbox_dir>/<yyyy-mm-dd>/<key hash>.eml` (business date,
    Asia/Shanghai). A second send with the same idempotency key finds the file (on any day)
    and returns the same Message-ID without writing again."""

    def __init__(self, outbox_dir: Path | str, mail_from: str, *,
                 message_id_domain: str | None = None) -> None:
        self.outbox_dir = Path(outbox_dir)
        self.mail_from = mail_from
        self.message_id_domain = message_id_domain or sender_domain(mail_from)

    def find(self, idempotency_key: str) -> Path | None:
        name = f"{key_hash(idempotency_key)}.eml"
        if not self.outbox_dir.is_dir():
            return None
        for day in self.outbox_dir.iterdir():
            candidate = day / name
            if candidate.is_file():
                return candidate
        return None

    def send(self, mail: OutgoingMail) -> str:
        message_id = message_id_for(mail.idempotency_key, self.message_id_domain)
        if self.find(mail.idempotency_key) is not None:
            log.info("outbox: %s already written, not writing again", message_id)
            return message_id
        msg = _build(mail, self.mail_from, self.message_id_domain)
        _recipients(mail)  # same address checks as SMTP, so the outbox is an honest stand-in
        day = dt.datetime.now(BUSINESS_TZ).date().isoformat()
        target_dir = self.outbox_dir / day
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / f"{key_hash(mail.idempotency_key)}.eml"
        write_atomically(target, msg.as_bytes())  # readers never see a half-written .eml
        log.info("outbox: wrote %s to %s", message_id, target)
        return message_id

    def list_messages(self) -> list[StoredMail]:
        """Every stored mail, oldest day first."""
        if not self.outbox_dir.is_dir():
            return []
        parser = BytesParser(policy=email_policy.default)
        return [StoredMail(path, parser.parsebytes(path.read_bytes()))
                for path in sorted(self.outbox_dir.glob("*/*.eml"))]


# --- real SMTP ------------------------------------------------------------------------------

def _reply_text(code: int, reply: bytes | str) -> str:
    """An SMTP reply as people read it: "550 5.1.1 <x@y>: User unknown"."""
    return f"{code} {_decoded(reply)}"


def _decoded(reply: bytes | str) -> str:
    return (reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply))[:300]


def _refusal(code: int, reply: bytes | str, stage: str) -> str:
    return f"SMTP {stage} refused ({code}): {_decoded(reply)}"


def _reply_error(code: int, reply: bytes | str, stage: str) -> TransientError | PermanentError:
    """SMTP reply code -> typed error: 4xx means "try again later", 5xx means "never"."""
    message = _refusal(code, reply, stage)
    if 400 <= code < 500:
        return TransientError(message, provider=PROVIDER, code=str(code))
    return PermanentError(message, provider=PROVIDER, code=str(code))


class SmtpMailer:
    """Sends through an SMTP submission server.

    security: "starttls" (port 587; STARTTLS is required, never falls back to clear text),
    "ssl" (implicit TLS, port 465) or "none" (clear text, for a trusted local relay only).
    Recipients are all-or-nothing while a refusal may pass (4xx): the transaction is reset
    and nothing is sent, so the retry cannot give the accepted recipients a second copy. A
    main recipient (`to`) refused for good (5xx) sends to nobody (RecipientsRefused); copy
    recipients refused for good do not keep the mail from the others, and `send` names them
    (`SentMail.refused`): retrying could not reach them anyway.
    """

    def __init__(self, host: str, port: int = 587, *,
                 security: Literal["starttls", "ssl", "none"] = "starttls",
                 username: str = "", password: SecretStr | str = "",
                 mail_from: str, timeout: float = 10.0, verify_tls: bool = True,
                 ca_file: Path | str | None = None, attempts: int = 4,
                 local_hostname: str | None = None,
                 message_id_domain: str | None = None,
                 backoff_initial: float = 0.2, backoff_max: float = 3.0) -> None:
        if security not in ("starttls", "ssl", "none"):
            raise ValueError(f"unknown SMTP security {security!r}")
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self._password = password if isinstance(password, SecretStr) else SecretStr(password)
        self.mail_from = mail_from
        self.envelope_from = _envelope_address(mail_from)
        self.timeout = timeout
        self.verify_tls = verify_tls
        self.ca_file = Path(ca_file) if ca_file else None
        self.attempts = attempts
        self.local_hostname = local_hostname
        self.message_id_domain = message_id_domain or sender_domain(mail_from)
        self._send_with_retry = transient_retry(attempts, initial=backoff_initial,
                                                maximum=backoff_max)(self._send_once)
        if not verify_tls and security != "none":
            log.warning("SMTP TLS certificate verification is OFF for %s:%s", host, port)
        if username and security == "none":
            log.warning("SMTP AUTH over clear text to %s:%s (security='none')", host, port)

    def __repr__(self) -> str:  # never show the password
        return (f"SmtpMailer({self.host}:{self.port}, security={self.security!r}, "
                f"username={self.username!r})")

    def send(self, mail: OutgoingMail) -> SentMail:
        msg = _build(mail, self.mail_from, self.message_id_domain)
        rcpts = _recipients(mail)
        main = {address.lower() for _, address in getaddresses(list(mail.to)) if address}
        # built once, outside the retry, so every attempt sends identical bytes
        payload = msg.as_bytes()
        message_id = str(msg["Message-ID"])
        refused = self._send_with_retry(payload, rcpts, main, message_id,
                                        mail.give_up_deferred_cc)
        log.info("smtp: sent %s to %d recipient(s) via %s:%s", message_id,
                 len(rcpts) - len(refused), self.host, self.port)
        if refused:
            log.warning("smtp: %s not delivered to %s (refused)", message_id,
                        ", ".join(f"<{r}> {reply}" for r, reply in refused.items()))
        return SentMail(message_id, refused)

    # --- one attempt ------------------------------------------------------------------
    def _tls_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        if not self.verify_tls:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _send_once(self, payload: bytes, rcpts: list[str], main: set[str],
                   message_id: str, give_up_deferred_cc: bool) -> dict[str, str]:
        try:
            return self._attempt(payload, rcpts, main, give_up_deferred_cc)
        except TransientError as exc:
            log.warning("smtp: attempt for %s failed, may retry: %s", message_id, exc)
            raise

    def _attempt(self, payload: bytes, rcpts: list[str], main: set[str],
                 give_up_deferred_cc: bool) -> dict[str, str]:
        """One connection, one transaction (its copy recipients refused); every failure
        leaves as a typed error."""
        try:
            smtp = self._connect()
            try:
                return self._transaction(smtp, payload, rcpts, main, give_up_deferred_cc)
            finally:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    smtp.close()  # the mail's fate is already decided; just let go
        except (TransientError, PermanentError):
            raise
        except smtplib.SMTPServerDisconnected as exc:
            raise TransientError(f"SMTP server hung up: {exc}", provider=PROVIDER,
                                 code="disconnected") from exc
        except smtplib.SMTPResponseException as exc:
            raise _reply_error(exc.smtp_code, exc.smtp_error, "command") from exc
        except smtplib.SMTPException as exc:
            raise PermanentError(f"SMTP protocol error: {exc}", provider=PROVIDER,
                                 code="protocol") from exc
        except ssl.SSLCertVerificationError as exc:
            raise PermanentError(f"SMTP server certificate rejected: {exc}", provider=PROVIDER,
                                 code="tls") from exc
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError) as exc:
            raise TransientError(f"TLS connection cut: {exc}", provider=PROVIDER,
                                 code="network") from exc
        except ssl.SSLError as exc:
            # protocol/version mismatch, e.g. "ssl" pointed at a STARTTLS port: configuration
            raise PermanentError(f"TLS handshake failed: {exc}", provider=PROVIDER,
                                 code="tls") from exc
        except (socket.timeout, TimeoutError, OSError) as exc:
            raise TransientError(f"SMTP server unreachable: {exc!r}", provider=PROVIDER,
                                 code="network") from exc

    def _connect(self) -> smtplib.SMTP:
        if self.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, self.local_hostname,
                                                  timeout=self.timeout,
                                                  context=self._tls_context())
        else:
            smtp = smtplib.SMTP(self.host, self.port, self.local_hostname, timeout=self.timeout)
        try:
            self._ehlo(smtp)
            if self.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise PermanentError(
                        f"{self.host}:{self.port} does not offer STARTTLS; refusing to send "
                        "in clear text", provider=PROVIDER, code="starttls")
                smtp.starttls(context=self._tls_context())
                self._ehlo(smtp)  # capabilities (AUTH) change once encrypted
            if self.username:
                self._login(smtp)
        except BaseException:
            smtp.close()
            raise
        return smtp

    @staticmethod
    def _ehlo(smtp: smtplib.SMTP) -> None:
        code, reply = smtp.ehlo()
        if code != 250:
            raise _reply_error(code, reply, "EHLO")

    def _login(self, smtp: smtplib.SMTP) -> None:
        mechanisms = smtp.esmtp_features.get("auth", "").upper().split()
        # one mechanism, one try: smtplib.login() would try each advertised mechanism in turn,
        # multiplying failed logins (and lockout risk) on a wrong password
        mechanism = next((m for m in ("PLAIN", "LOGIN") if m in mechanisms), None)
        if mechanism is None:
            raise PermanentError(f"{self.host}:{self.port} offers no AUTH PLAIN/LOGIN "
                                 f"(offered: {mechanisms or 'none'})", provider=PROVIDER,
                                 code="auth")
        # our own exchange rather than smtplib.auth(): that one encodes credentials as ASCII,
        # while RFC 4616/4954 carry UTF-8 (a Chinese password must work)
        user = self.username.encode("utf-8")
        secret = self._password.get_secret_value().encode("utf-8")
        if mechanism == "PLAIN":
            code, reply = smtp.docmd("AUTH", "PLAIN " + _b64(b"\0" + user + b"\0" + secret))
        else:
            code, reply = smtp.docmd("AUTH", "LOGIN " + _b64(user))
            if code == 334:
                code, reply = smtp.docmd(_b64(secret))
        if code not in (235, 503):  # 503: already authenticated
            # 454 is a temporary auth failure; 535 & co. mean wrong credentials
            raise _reply_error(code, reply, "AUTH")

    def _transaction(self, smtp: smtplib.SMTP, payload: bytes, rcpts: list[str],
                     main: set[str], give_up_deferred_cc: bool) -> dict[str, str]:
        """MAIL, RCPT, DATA. Returns the copy recipients refused for good, or deferred when
        `give_up_deferred_cc` ({address: reply}), the mail delivered to the others; raises
        when nobody got it."""
        code, reply = smtp.mail(self.envelope_from)
        if code != 250:
            _reset(smtp)
            raise _reply_error(code, reply, "MAIL FROM")
        refused: dict[str, tuple[int, bytes]] = {}
        for rcpt in rcpts:
            code, reply = smtp.rcpt(rcpt)
            if code not in (250, 251):
                refused[rcpt] = (code, reply)
        transient = {r: v for r, v in refused.items() if 400 <= v[0] < 500
                     and not (give_up_deferred_cc and r.lower() not in main)}
        for_good = {r: v for r, v in refused.items() if r not in transient}
        lost_main = [r for r in for_good if r.lower() in main]
        if lost_main or transient:
            # nobody gets the mail: a main recipient cannot be reached (retrying cannot fix
            # that), or a refusal may pass and the retry must not be a second copy for some
            _reset(smtp)
            stage = "RCPT TO " + ", ".join(f"<{r}> {c}" for r, (c, _) in refused.items())
            if lost_main:
                code, reply = for_good[lost_main[0]]
                raise RecipientsRefused(
                    _refusal(code, reply, stage),
                    {r: _reply_text(c, t) for r, (c, t) in for_good.items()}, str(code))
            code, reply = max(transient.values(), key=lambda v: v[0])
            raise _reply_error(code, reply, stage)
        try:
            code, reply = smtp.data(payload)
        except smtplib.SMTPDataError as exc:  # refused DATA itself (no 354)
            _reset(smtp)
            raise _reply_error(exc.smtp_code, exc.smtp_error, "DATA") from exc
        if code != 250:
            _reset(smtp)
            raise _reply_error(code, reply, "DATA")
        return {r: _reply_text(c, t) for r, (c, t) in for_good.items()}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _reset(smtp: smtplib.SMTP) -> None:
    """RSET, ignoring a dead connection: the error we are about to raise is the one that
    matters."""
    try:
        smtp.rset()
    except (smtplib.SMTPException, OSError):
        pass


# --- configuration --------------------------------------------------------------------------

def build_mailer(settings) -> Mailer:
    """The mailer the settings ask for (`email_backend`: "outbox" | "smtp")."""
    if settings.email_backend == "smtp":
        return SmtpMailer(
            settings.smtp_host, settings.smtp_port, security=settings.smtp_security,
            username=settings.smtp_username, password=settings.smtp_password,
            mail_from=settings.mail_from, timeout=settings.connector_timeout_seconds,
            verify_tls=settings.smtp_verify_tls,
            ca_file=settings.smtp_ca_file,
            attempts=settings.connector_attempts,
        )
    return OutboxMailer(settings.path("outbox"), settings.mail_from)
