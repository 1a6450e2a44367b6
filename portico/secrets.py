"""Encryption at rest for provider secrets (virtual keys), with Fernet (AES-128-CBC + HMAC-SHA256).

The key comes from `PORTICO_SECRET_KEY`; without it, one is generated into `<data_dir>/secret.key` (mode 0600) on
first use, which suits a single machine. Processes sharing a database must share the key: set the variable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from portico.errors import PorticoError
from portico.settings import Settings

KEY_FILE = "secret.key"


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        if settings.secret_key is not None:
            return cls(settings.secret_key.get_secret_value().encode())
        return cls(_key_file(settings.data_dir / KEY_FILE))

    def seal(self, values: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(values).encode()).decode()

    def open(self, token: str) -> dict[str, Any]:
        try:
            opened: dict[str, Any] = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise PorticoError(
                "Stored provider secrets cannot be decrypted: PORTICO_SECRET_KEY differs from the key they were "
                "sealed with.",
                code="secret_key_mismatch",
            ) from None
        return opened


def _key_file(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # O_EXCL: two processes starting together must not each write a different key.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key)
    return key
