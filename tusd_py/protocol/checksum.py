"""Upload-Checksum (tus 1.0.0 "Checksum" extension) as pure parsing plus hash factories.

"The Upload-Checksum request header contains information about the checksum of the current body
payload. The header MUST consist of the name of the used checksum algorithm and the Base64
encoded checksum separated by a space." An unsupported algorithm is 400; so is a digest that is
not Base64 or has the wrong length for its algorithm (it could never match, and saying so is
kinder than a 460 after the whole body was sent).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import crc32c

from tusd_py.model.errors import bad_request


class Hasher(Protocol):
    def update(self, data: bytes, /) -> object: ...
    def digest(self) -> bytes: ...


class _Crc32:
    """zlib.crc32 as a hashlib-style object; the digest is the 4-byte big-endian value."""

    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes, /) -> None:
        self._value = zlib.crc32(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


# name -> (factory, digest size in bytes). Advertised in this order.
ALGORITHMS: dict[str, tuple[Callable[[], Hasher], int]] = {
    "sha1": (hashlib.sha1, 20),
    "md5": (hashlib.md5, 16),
    "sha256": (hashlib.sha256, 32),
    "sha512": (hashlib.sha512, 64),
    "crc32": (_Crc32, 4),
    "crc32c": (crc32c.CRC32CHash, 4),  # hardware-accelerated where the CPU has SSE4.2 / ARMv8 CRC
}


@dataclass(frozen=True, slots=True)
class ExpectedChecksum:
    algorithm: str
    digest: bytes

    def new_hasher(self) -> Hasher:
        return ALGORITHMS[self.algorithm][0]()


def parse_upload_checksum(header: str | None) -> ExpectedChecksum | None:
    if header is None:
        return None
    algorithm, sep, encoded = header.strip().partition(" ")
    algorithm = algorithm.lower()
    if not sep or not encoded.strip():
        raise bad_request("Upload-Checksum must be '<algorithm> <base64 digest>'")
    if algorithm not in ALGORITHMS:
        supported = ",".join(ALGORITHMS)
        raise bad_request(f"checksum algorithm {algorithm[:20]!r} is not supported (supported: {supported})")
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("Upload-Checksum digest is not valid Base64") from None
    size = ALGORITHMS[algorithm][1]
    if len(digest) != size:
        raise bad_request(f"Upload-Checksum {algorithm} digest must be {size} bytes, got {len(digest)}")
    return ExpectedChecksum(algorithm, digest)
