"""HTTPS for ``--tls-certificate`` / ``--tls-key``: the server's SSL context, in tusd's three modes.

tusd's ``-tls-mode`` (cmd/tusd/cli/serve.go): ``tls12`` (the default) allows TLS 1.2 with ECDHE and
AEAD ciphers only, and TLS 1.3; ``tls13`` allows TLS 1.3 only; ``tls12-strong`` allows TLS 1.2 only,
with ECDHE and AES-256-GCM.
"""

from __future__ import annotations

import ssl

_CIPHERS = {
    "tls12": "ECDHE+AESGCM:ECDHE+CHACHA20",
    "tls12-strong": "ECDHE+AES256+AESGCM",
}


class TLSConfigError(ValueError):
    """The certificate or key cannot be used; the message says which file and why."""


def server_context(certificate: str, key: str, mode: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3 if mode == "tls13" else ssl.TLSVersion.TLSv1_2
    if mode == "tls12-strong":
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    if mode in _CIPHERS:
        context.set_ciphers(_CIPHERS[mode])  # TLS 1.2 suites; TLS 1.3's are fixed by OpenSSL
    try:
        context.load_cert_chain(certificate, key)
    except FileNotFoundError as exc:
        raise TLSConfigError(f"cannot read {exc.filename}: no such file") from None
    except (OSError, ssl.SSLError) as exc:
        raise TLSConfigError(f"cannot use {certificate} with {key}: {exc.strerror or exc}") from None
    return context
