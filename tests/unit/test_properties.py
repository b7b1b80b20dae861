"""Property tests: whatever the cells and headers, the loader and validator raise only the product's own
errors, and every row they accept becomes a body the simulator (the provider's schema, strict) accepts."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchgen.errors import InputError
from batchgen.loader import SourceRow, Table, is_blank, load
from batchgen.schema import ALL_FIELDS, GenerateRequest
from batchgen.validate import validate_table

cells = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(
        ["TRUE", "no", "x", " 0.5 ", "50%", "0,25", "cover", "INPAINT", "fuzz-1.1 pro", "nan", "-0", "1e400"]
    ),
    st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2100, 1, 1)),
)
rows = st.dictionaries(st.sampled_from(ALL_FIELDS), cells, max_size=len(ALL_FIELDS))


def accepted_by_provider(payload: dict) -> None:
    """The body as the simulator sees it: JSON on the wire, the seed's schema in strict mode."""
    GenerateRequest.model_validate(json.loads(json.dumps(payload, allow_nan=False)), strict=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(rows, min_size=1, max_size=6))
def test_any_cells_give_problems_or_provider_valid_payloads(values: list[dict]) -> None:
    columns = {name: chr(65 + i) for i, name in enumerate(ALL_FIELDS)}
    given_rows = [
        {name: value for name, value in row.items() if not is_blank(value)} for row in values
    ]  # as the loader does
    table = Table(
        "in.xlsx",
        "xlsx",
        "Sheet1",
        1,
        columns,
        dict(columns),
        [],
        [SourceRow(i + 2, i + 2, row, {}) for i, row in enumerate(given_rows)],
    )
    result = validate_table(table)
    assert len(result.valid) + len(result.invalid_rows) == len(values)
    for row in result.valid:
        accepted_by_provider(row.payload)
        assert isinstance(row.payload["instrumental"], bool)
        assert ("morph" in row.payload) == any(name in row.source.fields for name in ALL_FIELDS[5:])
    for problem in result.errors:
        assert str(problem).startswith(f"Sheet1!{columns[problem.field]}{problem.row} {problem.field}: ")


headers = st.lists(
    st.one_of(
        st.sampled_from([*ALL_FIELDS, "Title", "Normalized Weirdness", "morph.riff_id", "Tags", "notes"]),
        st.text(max_size=12),
    ),
    min_size=1,
    max_size=8,
)
grid_cells = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(headers, st.lists(st.lists(grid_cells, max_size=8), max_size=6), st.sampled_from([",", ";", "\t"]))
def test_any_csv_loads_or_fails_with_a_clear_error(header: list[str], body: list[list[str]], delimiter: str) -> None:
    text = io.StringIO()
    csv.writer(text, delimiter=delimiter).writerows([header, *body])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.csv"
        path.write_text(text.getvalue(), encoding="utf-8")
        try:
            table = load(path)
        except InputError as exc:
            assert str(exc).startswith(str(path))
            return
        for row in validate_table(table).valid:
            accepted_by_provider(row.payload)
