"""Every file a run writes is checked before the first request: never the input, never a file batchgen did not
write, each writable: the checks themselves, in process."""

from __future__ import annotations

import pytest

from batchgen.errors import UsageError
from batchgen.targets import check_targets

from ..support.helpers import write_csv

SONGS = "title,tag,lyrics\nA,pop,la\nB,pop,lb\nC,,lc\n"


def test_every_target_is_compared_with_the_input_and_with_each_other(tmp_path) -> None:
    output = tmp_path / "out.csv"
    link = tmp_path / "link.csv"
    source = write_csv(tmp_path, SONGS)
    link.hardlink_to(source)
    with pytest.raises(UsageError, match=r"link\.csv is the input"):
        check_targets(output, source=source, log_file=link)
    with pytest.raises(UsageError, match=r"out\.csv is the output"):
        check_targets(output, source=source, annotate=tmp_path / "sub" / ".." / "out.csv")
    check_targets(tmp_path / "out.xlsx", source=source, log_file=tmp_path / "out.log")  # nothing to refuse


def test_a_failures_file_with_batchgens_header_is_its_own(tmp_path) -> None:
    (tmp_path / "out.failed.csv").write_text("\ufeffrow,title,state,error\n3,C,invalid,tag: is required\n")
    check_targets(tmp_path / "out.csv", source=None)
    (tmp_path / "out.failed.csv").write_text("row,title,notes\n")
    with pytest.raises(UsageError, match="was not written by batchgen"):
        check_targets(tmp_path / "out.csv", source=None)
