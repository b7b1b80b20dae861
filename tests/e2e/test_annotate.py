"""The annotated catalog, written by a run against the simulator."""

from __future__ import annotations

from pathlib import Path

import openpyxl

from batchgen.simulator import Faults

from ..support.helpers import write_csv


def test_annotated_copy_has_ids_status_and_error_on_each_row(tmp_path: Path, start_simulator, cli) -> None:
    server = start_simulator(Faults(script=["ok", "400"]))
    source = write_csv(tmp_path, "title,tag,lyrics,notes\nA,pop,la,keep me\nB,pop,la,\n,pop,la,\n")
    annotated = tmp_path / "annotated.xlsx"
    result = cli(
        "run",
        source,
        "-o",
        tmp_path / "out.xlsx",
        "--base-url",
        server.url,
        "--quiet",
        "--concurrency",
        "1",
        "--skip-invalid",
        "--annotate",
        annotated,
    )
    assert result.code == 1
    rows = [[cell.value for cell in row] for row in openpyxl.load_workbook(annotated).active.iter_rows()]
    ids = server.simulator.accepted[0]["job_ids"]
    assert rows == [
        ["title", "tag", "lyrics", "notes", "job_id_1", "job_id_2", "status", "error"],
        ["A", "pop", "la", "keep me", *ids, "done", None],
        ["B", "pop", "la", None, None, None, "failed", "HTTP 400: The provider rejected this request"],
        [None, "pop", "la", None, None, None, "invalid", "title: is required"],
    ]
