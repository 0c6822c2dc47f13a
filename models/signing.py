"""Signing-page tokens: unguessable, expiring, single use; only their hash is stored.

The token is derived from a server secret and the quote, so any step (PDF, mail, retry)
can rebuild the link without the database holding it in clear.
"""
from __future__ import annotations

import base64
import hashlib
import hmac


def derive_signing_token(secret: bytes, quote_code: str, issued_at_epoch: int) -> str:
    digest = hmac.new(secret, f"sign:{quote_code}:{issued_at_epoch}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
