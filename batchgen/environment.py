"""The environment variables batchgen reads, each name written here only (messages and flags import it)."""

from __future__ import annotations

KEY_ENV = "BATCHGEN_API_KEY"
URL_ENV = "BATCHGEN_BASE_URL"
LEDGER_ENV = "BATCHGEN_LEDGER"
STATE_ENV = "BATCHGEN_STATE_DIR"
MACHINE_ENV = "BATCHGEN_MACHINE"
