"""Signed, short-lived download links for an upload's owner (players that cannot send a token).

``POST /api/recordings/{id}/download-url`` (behind the token, like the rest of the API) returns a
link to ``GET /download/{id}?expires=..&signature=..`` for the caller's own upload. That route is
public: the link is its own credential, checked by :func:`tusd_py.protocol.signed_download.check_link`.
It serves exactly what the tus GET serves (finished uploads, Range), so an ``<audio>`` element can seek.

The key: ``--download-signing-key`` when given. Otherwise it is derived from ``--jwt-secret`` with
HKDF-SHA256 (RFC 5869) under a label of its own, not the secret itself: a key used for one purpose
only means a link signature can never be replayed as a token signature or the other way round,
and every instance sharing the JWT secret accepts the others' links without one more secret to
distribute. With public-key auth (or none) and no key given, one process serving alone makes a
random key at start (links then stop working on restart, which the log says); where several
processes or instances can serve, a per-process key would fail most links, so the server refuses
to start instead (``config.refusals.signing_key_refusal``).
"""

from __future__ import annotations

import secrets
import time

import structlog
from aiohttp import web

from tusd_py.config.refusals import signing_key_refusal
from tusd_py.config.values import Config
from tusd_py.http import tus_handlers as core
from tusd_py.http.gate import actor
from tusd_py.model.upload import UPLOAD_ID
from tusd_py.protocol.signed_download import EXPIRES, SIGNATURE, check_link, forbidden, signed_query
from tusd_py.protocol.urls import external_base
from tusd_py.recordings.handlers import json_response, recording_not_found
from tusd_py.recordings.schemas import DownloadUrl, moment
from tusd_py.uploads.actor import link
from tusd_py.uploads.operations import Uploads

log = structlog.get_logger(__name__)

DOWNLOAD_PATH = "/download/"
_HKDF_INFO = b"tusd-py signed download links v1"


class SigningKeyMissing(ValueError):
    """Several processes or instances could serve and none of them can make the one shared key."""


def signing_key(config: Config) -> bytes:
    """The links' HMAC key; raise :class:`SigningKeyMissing` (a start-up refusal) when it cannot be shared."""
    if config.download_signing_key:
        return config.download_signing_key.encode()
    if config.jwt_secret:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(config.jwt_secret.encode())
    refusal = signing_key_refusal(config)
    if refusal is not None:
        raise SigningKeyMissing(refusal)
    log.warning(
        "signed download links use a random key: they stop working on restart; "
        "give --download-signing-key to keep them valid"
    )
    return secrets.token_bytes(32)


class SignedDownloads:
    def __init__(self, uploads: Uploads) -> None:
        self.uploads = uploads
        self.service = uploads.service
        self.key = signing_key(uploads.service.config)

    async def create_url(self, request: web.Request) -> web.Response:
        """API handler: a signed link for the caller's own upload (another user's answers 404)."""
        upload_id = request.match_info["upload_id"]
        if not UPLOAD_ID.fullmatch(upload_id):
            raise recording_not_found()
        await self.uploads.read(actor(request), upload_id)  # the operation layer's read, as the tus GET
        expires = int(time.time() + self.service.config.download_url_ttl)
        base = external_base(
            scheme=request.scheme,
            host=request.host,
            base_path=DOWNLOAD_PATH,
            headers=request.headers,
            behind_proxy=self.service.config.behind_proxy,
        )
        url = f"{base}{upload_id}?{signed_query(self.key, upload_id, expires)}"
        return json_response(DownloadUrl(url=url, expires_at=moment(expires)))

    async def download(self, request: web.Request) -> web.StreamResponse:
        """Public handler: the upload's bytes if the link is valid (403 otherwise)."""
        upload_id = request.match_info["upload_id"]
        if not UPLOAD_ID.fullmatch(upload_id):
            raise forbidden("download link is invalid")
        check_link(self.key, upload_id, request.query.get(EXPIRES), request.query.get(SIGNATURE), now=time.time())
        # The link stands in for the owner's token (Role.LINK): everything but the owner check applies.
        info = await self.uploads.read(link(), upload_id, download=True)
        return await core.send_upload(self.service, request, info)


def add_signed_downloads(app: web.Application, uploads: Uploads) -> SignedDownloads:
    """Mount the public ``/download/{id}`` route; the returned signer issues the links (the API's
    ``download-url`` handler, under every API prefix)."""
    downloads = SignedDownloads(uploads)
    app.router.add_get(DOWNLOAD_PATH + "{upload_id}", downloads.download, name="public.signed-download")
    return downloads
