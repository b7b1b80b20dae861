"""Masking a secret in text that is shown or kept: a floor below the submitter and the ledger, which both use it."""

from __future__ import annotations

import re


def redact(text: str, secret: str) -> str:
    """``text`` with the key masked wherever it stands as a token of its own.

    With the key ``k``, "not known" stays as it is. A key of 12 characters or more cannot occur inside an
    ordinary word by chance, so every occurrence of it is masked.
    """
    if not secret:
        return text
    if len(secret) >= 12:
        return text.replace(secret, "***")
    return re.sub(rf"(?<![A-Za-z0-9_\-.~+/=]){re.escape(secret)}(?![A-Za-z0-9_\-.~+/=])", "***", text)
