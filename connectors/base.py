"""What every connector shares: typed errors, the transient-only retry, HTTP error mapping."""
from __future__ import annotations

import httpx
import tenacity


class ConnectorError(Exception):
    """An outside system did not do what we asked."""

    def __init__(self, message: str, *, provider: str = "", code: str = "") -> None:
        super().__init__(message)
        self.provider = provider
        self.code = code


class TransientError(ConnectorError):
    """Worth retrying: timeouts, connection resets, 5xx, 429, SMTP 4xx."""


class PermanentError(ConnectorError):
    """Retrying will not help (bad request, auth refused, unknown record): a person must act."""


def transient_retry(attempts: int = 4, initial: float = 0.2, maximum: float = 3.0):
    """tenacity policy used by every remote client: retries TransientError only."""
    return tenacity.retry(
        retry=tenacity.retry_if_exception_type(TransientError),
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential_jitter(multiplier=initial, max=maximum),
        reraise=True,
    )


def check_response(response: httpx.Response, provider: str) -> httpx.Response:
    """Raise the typed error an HTTP status means; return the response when it is 2xx."""
    status = response.status_code
    if status < 300:
        return response
    text = response.text[:300]
    if status == 429 or status >= 500:
        raise TransientError(f"{provider} answered {status}: {text}", provider=provider,
                             code=str(status))
    raise PermanentError(f"{provider} refused the request ({status}): {text}",
                         provider=provider, code=str(status))


def send(client: httpx.Client, provider: str, method: str, url: str, **kwargs) -> httpx.Response:
    """One HTTP request with network failures mapped to TransientError."""
    try:
        response = client.request(method, url, **kwargs)
    except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        raise TransientError(f"{provider} unreachable: {exc!r}", provider=provider,
                             code="network") from exc
    return check_response(response, provider)


class RemoteClient:
    """A connector that owns an httpx.Client: close() it, or use it as a context manager."""

    _client: httpx.Client

    def _connect(self, base_url: str, timeout: float, authorization: str) -> None:
        """The JSON client of a provider with one Authorization header for every call."""
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=httpx.Timeout(timeout),
                                    headers={"Authorization": authorization,
                                             "Accept": "application/json"})

    def close(self) -> None:
        self._client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
