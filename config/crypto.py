"""Encryption at rest for secrets (secret inputs, TLS keys of targets).

The key comes from AGORA_ENCRYPTION_KEY (a Fernet key) or, in the embedded
default, is derived from SECRET_KEY so that nothing has to be configured.
Rotating SECRET_KEY without setting AGORA_ENCRYPTION_KEY makes stored secrets
unreadable: production installations set AGORA_ENCRYPTION_KEY.
"""

import base64
import hashlib
import json
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

from config.errors import AgoraError


@cache
def _fernet() -> Fernet:
    key = getattr(settings, "AGORA_ENCRYPTION_KEY", "")
    if not key:
        digest = hashlib.sha256(("agora-encryption:" + settings.SECRET_KEY).encode()).digest()
        key = base64.urlsafe_b64encode(digest).decode()
    return Fernet(key)


def encrypt_json(value: Any) -> str:
    return _fernet().encrypt(json.dumps(value).encode()).decode()


def decrypt_json(token: str) -> Any:
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken:
        raise AgoraError(
            "A stored secret cannot be decrypted: AGORA_ENCRYPTION_KEY or SECRET_KEY changed.",
            code="secret_unreadable",
        ) from None
