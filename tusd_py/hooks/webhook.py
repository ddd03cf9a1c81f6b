"""HTTP webhooks: POST the event as JSON, signed, with a timeout; retry post-* deliveries.

Pre-* hooks make one attempt: a client is waiting for the answer, and the upload has not been
accepted yet, so failing fast (and letting the client retry, as tus clients do on 5xx) is safer
than holding the request through a backoff. Post-* hooks retry with exponential backoff and
jitter, because the upload already happened and the receiver should still learn about it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Literal
from urllib.parse import urlsplit

import aiohttp
import msgspec
import structlog

from tusd_py.hooks.events import HookEvent, HookType, encode_event
from tusd_py.hooks.signing import SIGNATURE_HEADER, sign
from tusd_py.hooks.standard_signing import signing_key, standard_headers
from tusd_py.hooks.tusd_format import forwarded_values, request_body
from tusd_py.protocol.urls import safe_url

log = structlog.get_logger(__name__)

MAX_REPLY_BYTES = 64 * 1024
MAX_RETRIES = 10
# 408 and 429 say "later"; 5xx say "not now". Other statuses will not change on a retry.
RETRYABLE_STATUSES = frozenset({408, 429})


class WebhookConfig(msgspec.Struct, kw_only=True):
    url: str
    # Signs with Standard Webhooks headers (and, for one release, Tusd-Py-Signature); None: unsigned.
    secret: str | None = None
    timeout: float = 5.0  # seconds per attempt, connect to last byte of the reply
    retries: int = 3  # post-* only: extra attempts after the first
    backoff_base: float = 0.5  # seconds; attempt n waits about base * 2**n
    backoff_max: float = 30.0
    hooks: list[HookType] = msgspec.field(default_factory=lambda: list(HookType))
    # Pre-* hooks: when the webhook cannot answer (down, timeout, 5xx, invalid reply), reject the
    # request (True) or go on as if it had accepted (False).
    fail_closed: bool = True
    headers: dict[str, str] = msgspec.field(default_factory=dict)  # e.g. credentials for the receiver
    # The wire format: tusd-py's own (WEBHOOKS.md) or tusd v2's HookRequest / HookResponse.
    format: Literal["tusd-py", "tusd"] = "tusd-py"
    # --hooks-forward-headers. In tusd's format they are also set on the hook request itself, as
    # tusd's -hooks-http-forward-headers does (tusd-py's format carries them in the body only).
    forward_headers: list[str] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("webhook url must be an http(s) URL with a host")
        if self.timeout <= 0:
            raise ValueError("webhook timeout must be positive")
        if not 0 <= self.retries <= MAX_RETRIES:
            raise ValueError(f"webhook retries must be between 0 and {MAX_RETRIES}")
        if self.backoff_base <= 0 or self.backoff_max < self.backoff_base:
            raise ValueError("webhook backoff_base must be positive and at most backoff_max")
        if self.secret is not None:
            signing_key(self.secret)  # a malformed whsec_ secret is refused at start-up

    def __repr__(self) -> str:
        # The secret and the URL's credentials must not reach logs.
        return f"WebhookConfig(url={safe_url(self.url)!r}, hooks={[str(h) for h in self.hooks]})"


def encode_for(config: WebhookConfig, event: HookEvent, *, durable: bool) -> bytes:
    """The request body in the webhook's format; ``durable``: it will be kept in the outbox."""
    if config.format != "tusd":
        return encode_event(event)
    forwarded = frozenset(name.lower() for name in config.forward_headers)
    return request_body(event, durable=durable, forwarded=forwarded)


def backoff_delay(attempt: int, base: float, cap: float, rand: Callable[[], float]) -> float:
    """Seconds to wait before retry ``attempt`` (0-based). "Equal jitter": half fixed, half
    random, so retries from many events spread out yet never hammer the receiver back-to-back."""
    ceiling = min(cap, base * 2.0**attempt)
    return ceiling / 2 + rand() * ceiling / 2


class WebhookFailed(Exception):
    """The webhook did not take the event. ``unavailable`` tells a down receiver (network error,
    timeout, 5xx) from one that answered wrongly (other statuses)."""

    def __init__(self, reason: str, *, unavailable: bool, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unavailable = unavailable
        self.retryable = retryable


class WebhookClient:
    def __init__(
        self,
        config: WebhookConfig,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.target = safe_url(config.url)
        self._sleep = sleep
        self._rand = rand
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._key = signing_key(config.secret) if config.secret is not None else None

    def wants(self, hook_type: HookType) -> bool:
        return hook_type in self.config.hooks

    @property
    def tusd(self) -> bool:
        return self.config.format == "tusd"

    def encode(self, event: HookEvent) -> bytes:
        return encode_for(self.config, event, durable=False)

    async def call(self, event: HookEvent) -> bytes:
        """One attempt; the reply body on 2xx, else :class:`WebhookFailed`."""
        return await self._attempt(self.encode(event), str(event.type), event.event_id)

    async def send(self, body: bytes, hook: str, event_id: str) -> bytes:
        """One attempt with an already encoded event (the outbox keeps the exact bytes); the reply."""
        return await self._attempt(body, hook, event_id)

    async def deliver(self, event: HookEvent) -> int:
        """Up to ``1 + retries`` attempts; return the number of attempts, or raise the last failure."""
        body = self.encode(event)  # encoded once: every retry sends the same bytes
        attempt = 0
        while True:  # bounded: returns or raises by attempt config.retries
            try:
                await self._attempt(body, str(event.type), event.event_id)
                return attempt + 1
            except WebhookFailed as exc:
                if not exc.retryable or attempt >= self.config.retries:
                    raise
                delay = backoff_delay(attempt, self.config.backoff_base, self.config.backoff_max, self._rand)
                log.info(
                    "webhook attempt failed, retrying",
                    hook=str(event.type),
                    target=self.target,
                    attempt=attempt + 1,
                    reason=exc.reason,
                    retry_in=round(delay, 3),
                )
                await self._sleep(delay)
                attempt += 1

    async def close(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _attempt(self, body: bytes, hook: str, event_id: str) -> bytes:
        if self._closed:
            raise WebhookFailed("webhook client is closed", unavailable=True, retryable=False)
        forwarded = forwarded_values(body, self.config.forward_headers) if self.tusd else {}
        headers = {
            **forwarded,
            **self.config.headers,
            "Content-Type": "application/json",
            "User-Agent": "tusd-py-webhook",
            "Tusd-Py-Hook": hook,
        }
        if self.config.secret is not None and self._key is not None:
            # Signed per attempt: a retry after a long backoff must not look like a replay. The id
            # stays the event's, so a receiver drops a redelivery it already handled.
            now = int(self._clock())
            headers.update(standard_headers(self._key, event_id, body, now))
            headers[SIGNATURE_HEADER] = sign(self.config.secret, body, now)  # deprecated; see WEBHOOKS.md
        try:
            # Redirects are not followed: the signed event must go where it was configured to.
            async with self._get_session().post(
                self.config.url, data=body, headers=headers, allow_redirects=False
            ) as resp:
                reply = await _read_bounded(resp)
                status = resp.status
        except TimeoutError:
            raise WebhookFailed("timed out", unavailable=True, retryable=True) from None
        except aiohttp.ClientError as exc:
            reason = f"{type(exc).__name__}: {exc}"[:200]
            raise WebhookFailed(reason, unavailable=True, retryable=True) from None
        if 200 <= status < 300:
            return reply
        server_side = status >= 500
        raise WebhookFailed(
            f"answered {status}",
            unavailable=server_side,
            retryable=server_side or status in RETRYABLE_STATUSES,
        )

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.config.timeout))
        return self._session


async def _read_bounded(resp: aiohttp.ClientResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(16 * 1024):
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            raise WebhookFailed(f"reply is longer than {MAX_REPLY_BYTES} bytes", unavailable=False, retryable=False)
        chunks.append(chunk)
    return b"".join(chunks)
