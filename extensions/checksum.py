"""tus "Checksum" extension: every PATCH (and creation-with-upload body) may carry Upload-Checksum.

The digest is computed while the body streams (no second pass). On mismatch the server answers
460 Checksum Mismatch and keeps none of the request's bytes: the backend's all-or-nothing write
(``DataStore.write(verify=...)``) guarantees it, crash included.

checksum-trailer is not offered: aiohttp's HTTP parsers (C and Python) parse chunked trailers and
discard them, so the handler can never see an Upload-Checksum trailer.
"""

from __future__ import annotations

from aiohttp import web

from tusd_py.model.storage_errors import VerificationFailed
from tusd_py.protocol.checksum import ALGORITHMS, ExpectedChecksum, parse_upload_checksum
from tusd_py.uploads.extension_api import Extension, Verifier


class ChecksumVerifier(Verifier):
    def __init__(self, expected: ExpectedChecksum) -> None:
        self.expected = expected
        self._hasher = expected.new_hasher()

    def observe(self, chunk: bytes) -> None:
        self._hasher.update(chunk)

    def verify(self) -> None:
        if self._hasher.digest() != self.expected.digest:
            raise VerificationFailed(f"checksum mismatch ({self.expected.algorithm}); the chunk was discarded")


class Checksum(Extension):
    name = "checksum"

    def options_headers(self) -> dict[str, str]:
        return {"Tus-Checksum-Algorithm": ",".join(ALGORITHMS)}

    def verifier(self, request: web.Request) -> Verifier | None:
        expected = parse_upload_checksum(request.headers.get("Upload-Checksum"))
        return ChecksumVerifier(expected) if expected is not None else None
