"""What a tus extension can contribute to the server.

Each extension module defines one subclass; the app asks each enabled extension for its routes
and lets it take part in the core's requests through these few seams, so the core never
names an extension and an extension never reimplements the core.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, ClassVar

from aiohttp import web

from tusd_py.model.upload import UploadInfo

if TYPE_CHECKING:
    from tusd_py.uploads.operations import Uploads
    from tusd_py.uploads.tus_service import TusService

#: A route's handler: it parses the request, calls the operation layer, writes the response.
Handler = Callable[["Uploads", web.Request], Awaitable[web.StreamResponse]]
#: (target, method): target is "collection" (the base path) or "upload" (base path + id).
RouteKey = tuple[str, str]


class Verifier:
    """Checks one request's bytes as they stream; ``verify`` raises VerificationFailed to reject them."""

    def observe(self, chunk: bytes) -> None:
        raise NotImplementedError

    def verify(self) -> None:
        raise NotImplementedError


class Extension:
    #: The name advertised in Tus-Extension.
    name: ClassVar[str]
    #: Backend capability the extension needs (None: works on every backend).
    requires: ClassVar[str | None] = None
    #: Whether the name goes into Tus-Extension (the resumable-upload draft is not a tus extension).
    advertised: ClassVar[bool] = True

    def routes(self) -> dict[RouteKey, Handler]:
        return {}

    def options_headers(self) -> dict[str, str]:
        """Extra headers for OPTIONS (e.g. Tus-Checksum-Algorithm)."""
        return {}

    def upload_headers(self, service: TusService, info: UploadInfo) -> dict[str, str]:
        """Extra headers on HEAD, PATCH and creation responses (e.g. Upload-Expires)."""
        return {}

    def check_access(self, service: TusService, info: UploadInfo) -> None:
        """Raise a TusError if the upload must not be served any more (e.g. expired)."""

    async def refresh(self, service: TusService, info: UploadInfo) -> UploadInfo:
        """Bring state that another instance may have made due up to date before HEAD answers.

        (The concatenation extension assembles a final whose partials were finished elsewhere.)
        Called without the upload's lock held.
        """
        return info

    def check_write(self, service: TusService, info: UploadInfo) -> None:
        """Raise a TusError if the upload must not receive bytes (e.g. a final concatenation)."""

    def verifier(self, request: web.Request) -> Verifier | None:
        """A checker for this request's bytes (checksum), or None."""
        return None

    async def on_finished(self, service: TusService, info: UploadInfo) -> None:
        """Called once for every upload whose last byte was stored, partial uploads included."""

    async def on_final_created(self, service: TusService, info: UploadInfo) -> None:
        """Called once a final concatenation upload exists (the concatenation extension assembles it)."""

    async def recover(self, service: TusService, info: UploadInfo) -> None:
        """Called for every stored upload at start-up, to rebuild in-memory state or repair a crash."""

    def prepare_upload(self, request: web.Request, info: UploadInfo) -> None:
        """Adjust a new upload's info from the creation request (e.g. mark it a partial upload)."""

    def request_handler(self, target: str, method: str, request: web.Request) -> Handler | None:
        """A handler that takes this request over before the tus rules (Tus-Resumable, the tus
        handler table) apply: another protocol on the same URLs, e.g. the resumable-upload draft."""
        return None

    def creation_handler(self, request: web.Request) -> Handler | None:
        """A handler that takes over this POST instead of plain creation (e.g. a final concatenation)."""
        return None
