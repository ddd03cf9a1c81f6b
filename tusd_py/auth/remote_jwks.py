"""A remote JWKS (an identity provider's ``jwks_uri``): fetched at start, cached, refreshed.

Why not PyJWT's ``PyJWKClient``: it fetches with blocking ``urllib`` (the event loop would stall
for the whole fetch on every refresh), caches for a fixed lifespan rather than per Cache-Control,
and refreshes on every unknown ``kid`` unless its own cache is on. Here the fetch is aiohttp and the
parsing is the same :func:`tusd_py.auth.keys.parse_jwks` a local ``--jwks`` file goes through (every
key bound to its one algorithm, private keys refused).

Rules:

* fresh for what the response's Cache-Control says, bounded (:mod:`tusd_py.auth.cache_policy`);
* a token naming an unknown ``kid`` triggers a fetch (the provider rotated keys), but fetches
  for that reason are at most one per ``min_refresh`` seconds, and concurrent requests share one
  fetch, so a flood of made-up kids costs the issuer nothing;
* a failed fetch keeps the keys already known (a provider's outage does not lock everyone out),
  is logged, and leaves a token whose key is not known refused: fail closed, 401.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import jwt
import structlog

from tusd_py.auth.cache_policy import MAX_SECONDS, MIN_SECONDS, fresh_for
from tusd_py.auth.config import AuthConfigError
from tusd_py.auth.keys import parse_jwks
from tusd_py.protocol.urls import safe_url

log = structlog.get_logger(__name__)

MAX_DOCUMENT_BYTES = 1024 * 1024  # a JWKS is a few KB; more is not one


class JwksUnavailable(Exception):
    """The key set could not be fetched (network, TLS, status, or an unusable document)."""


class RemoteJwks:
    def __init__(
        self,
        url: str,
        algorithms: list[str],
        *,
        ca_file: str | None = None,
        min_refresh: float = 30.0,
        timeout: float = 5.0,
        min_fresh: float = MIN_SECONDS,
        max_fresh: float = MAX_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not url.startswith("https://"):
            raise AuthConfigError("auth: jwks_url must be https")
        self.url = url
        self.target = safe_url(url)
        self.algorithms = list(algorithms)
        self.min_refresh = min_refresh
        self.timeout = timeout
        self.min_fresh = min_fresh
        self.max_fresh = max_fresh
        self._clock = clock
        try:
            self._ssl = ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise AuthConfigError(f"auth: jwks_ca_file {ca_file!r} is not a usable CA bundle: {exc}") from None
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fresh_until = 0.0
        self._last_attempt: float | None = None
        self._inflight: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self.fetches = 0  # attempts made, for operators and tests

    @property
    def kids(self) -> list[str]:
        return sorted(self._keys)

    async def start(self) -> None:
        """Fetch once; an unreachable issuer is logged, not fatal (requests get 401 until it answers)."""
        await self._refresh("start")

    async def close(self) -> None:
        if self._inflight is not None:
            self._inflight.cancel()
            await asyncio.gather(self._inflight, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def key_for(self, kid: object) -> tuple[Any, tuple[str, ...]] | None:
        """The key ``kid`` names and its algorithm, refreshing first if the set is stale or lacks it."""
        if not isinstance(kid, str):
            return None
        now = self._clock()
        if now >= self._fresh_until:
            await self._refresh("expired")
        elif kid not in self._keys:
            await self._refresh("unknown kid")
        jwk = self._keys.get(kid)
        return None if jwk is None else (jwk, (jwk.algorithm_name,))

    @property
    def reachable(self) -> bool:
        """False while the set is stale because fetching it failed (for the 401's reason)."""
        return self._clock() < self._fresh_until

    async def _refresh(self, reason: str) -> None:
        if self._inflight is not None:  # someone is fetching: share it
            await asyncio.shield(self._inflight)
            return
        now = self._clock()
        if self._last_attempt is not None and now - self._last_attempt < self.min_refresh:
            return  # rate limit: the issuer is asked at most once per min_refresh
        self._last_attempt = now
        self._inflight = asyncio.ensure_future(self._fetch(reason))
        try:
            await asyncio.shield(self._inflight)
        finally:
            self._inflight = None

    async def _fetch(self, reason: str) -> None:
        self.fetches += 1
        try:
            data, cache_control = await self._download()
            keys = parse_jwks(data, self.algorithms, self.target)
        except (JwksUnavailable, AuthConfigError) as exc:
            log.error("JWKS fetch failed; keeping the keys known so far", url=self.target, why=reason, error=str(exc))
            return
        fresh = fresh_for(cache_control, lo=self.min_fresh, hi=self.max_fresh)
        added, removed = sorted(set(keys) - set(self._keys)), sorted(set(self._keys) - set(keys))
        self._keys = keys
        self._fresh_until = self._clock() + fresh
        log.info(
            "JWKS fetched",
            url=self.target,
            why=reason,
            kids=sorted(keys),
            added=added,
            removed=removed,
            fresh_for=fresh,
        )

    async def _download(self) -> tuple[bytes, str | None]:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout), connector=aiohttp.TCPConnector(ssl=self._ssl)
            )
        try:
            # Redirects are not followed: the keys must come from the URL that was configured.
            async with self._session.get(
                self.url, allow_redirects=False, headers={"Accept": "application/json"}
            ) as resp:
                if resp.status != 200:
                    raise JwksUnavailable(f"answered {resp.status}")
                data = await resp.content.read(MAX_DOCUMENT_BYTES + 1)
                if len(data) > MAX_DOCUMENT_BYTES:
                    raise JwksUnavailable(f"document is larger than {MAX_DOCUMENT_BYTES} bytes")
                return data, resp.headers.get("Cache-Control")
        except TimeoutError:
            raise JwksUnavailable(f"no answer within {self.timeout} s") from None
        except aiohttp.ClientError as exc:
            raise JwksUnavailable(f"{type(exc).__name__}: {exc}"[:300]) from None
