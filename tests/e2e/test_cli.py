"""The command as a user starts it: ``import batchgen`` stays light, and a simulated run of one row."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ..support.helpers import songs, write_xlsx


def test_import_batchgen_loads_no_heavy_module() -> None:
    code = (
        "import sys, batchgen; heavy = [m for m in ('pandas', 'aiohttp', 'openpyxl', 'httpx', 'xlsxwriter', 'psycopg') "
        "if m in sys.modules]; print(heavy); assert callable(batchgen.validate)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
    command = [
        sys.executable,
        "-c",
        "import sys; from batchgen.cli import main; print(sorted(m for m in "
        "('pandas', 'aiohttp', 'openpyxl', 'httpx') if m in sys.modules))",
    ]
    assert subprocess.run(command, capture_output=True, text=True, check=True).stdout == "[]\n"


def test_rows_takes_one_row_too(tmp_path: Path, cli) -> None:
    source = write_xlsx(tmp_path, songs(4))
    result = cli("run", source, "-o", tmp_path / "out.xlsx", "--simulate", "--rows", "3", "-q")
    assert result.code == 0, result.err
    assert "1 row: 1 done; 1 request sent" in result.err
    for given, said in (("0", "row 0"), ("9", "row 9"), ("0-1", "rows between 0 and 1")):  # "between 0 and the end"
        missing = cli("run", source, "-o", tmp_path / "out.xlsx", "--simulate", "--rows", given, "-q")
        assert missing.code == 2 and missing.err.strip().endswith(f"has no data {said}"), missing.err
