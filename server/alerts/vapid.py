"""VAPID (RFC 8292): the server's key pair, and the token each push service checks."""

from __future__ import annotations

import base64
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from webpush import WebPush
from webpush.vapid import VAPID


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# webpush ships no type hints (see the mypy overrides in pyproject.toml), so
# VAPID is Any to mypy.
class _OriginVAPID(VAPID):  # type: ignore[misc]  # untyped base from webpush
    """VAPID whose ``aud`` is the endpoint's full origin, port included, and
    whose token is signed once per push service, not once per message.

    webpush 1.0.6 writes ``scheme://host`` and drops a port, which RFC 8292
    (the audience is the origin of the push resource) does not allow. A
    token is reused until an hour before it expires, as RFC 8292 section 2
    allows; a fan-out to a thousand phones at one push service signs once.
    """

    _tokens: dict[tuple[str, str], tuple[float, str]]

    def get_authorization_header(self, endpoint: Any, subscriber: Any, expiration: int) -> str:
        parts = urlsplit(str(endpoint))
        audience = f"{parts.scheme}://{parts.netloc}"
        tokens: dict[tuple[str, str], tuple[float, str]] = self.__dict__.setdefault("_tokens", {})
        now = time.time()
        cached = tokens.get((audience, str(subscriber)))
        if cached and cached[0] - now > 3600:
            return cached[1]
        exp = int(now) + expiration
        token = jwt.encode(
            {
                "aud": audience,
                "exp": exp,
                "sub": subscriber
                if str(subscriber).startswith(("mailto:", "https:"))
                else f"mailto:{subscriber}",
            },
            key=self.private_key,
            algorithm="ES256",
        )
        header = f"vapid t={token}, k={self.get_application_server_key(self.public_key)}"
        tokens[(audience, str(subscriber))] = (exp, header)
        return header


@dataclass(frozen=True)
class Vapid:
    private_pem: bytes
    public_pem: bytes
    subject: str

    @property
    def application_server_key(self) -> str:
        """The public key as browsers want it: base64url of the uncompressed point."""
        key = serialization.load_pem_public_key(self.public_pem)
        assert isinstance(key, ec.EllipticCurvePublicKey)
        return _b64url(
            key.public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )

    def pusher(self) -> WebPush:
        # ttl is set per message in our headers; the instance's is never used.
        wp = WebPush(
            private_key=self.private_pem,
            public_key=self.public_pem,
            subscriber=self.subject,
            ttl=60,
            expiration=12 * 3600,
        )
        wp.vapid = _OriginVAPID(private_key=self.private_pem, public_key=self.public_pem)
        return wp


def load_vapid(data_dir: Path, private_pem: str = "", subject: str = "") -> Vapid:
    """The VAPID key pair: from settings, or made once and kept in the data dir (0600)."""
    subject = subject or "mailto:onsite@localhost"
    if private_pem:
        key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    else:
        path = data_dir / "vapid_private.pem"
        if not path.exists():
            new = ec.generate_private_key(ec.SECP256R1())
            pem = new.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(pem)
            except FileExistsError:
                pass  # another process made it first
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return Vapid(
        private_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        public_pem=key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        subject=subject,
    )
