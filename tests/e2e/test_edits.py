"""Edits after sending: a row already paid for is never paid again without the user's word. Real subprocesses
against the simulator and its log of accepted requests."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
import time
from pathlib import Path

import pytest

from batchgen.journal import journal_path
from batchgen.paths import real

from ..support.helpers import write_csv, write_xlsx
from ..support.runs import finish, no_duplicates, read_sheet, run_args, spawn, wait_for

HEADER = ["Title", "Tag", "Lyrics", "Transform", "Riff ID", "Weirdness"]
SONGS = [
    ["Midnight Harbor", "synthwave", "Neon on the water", "cover", "riff-1", 0.5],
    ["Quiet Fields", "ambient", "Wind over wheat", "cover", "riff-2", 0.2],
    ["Paper Moon", "jazz", "Moon made of paper", "cover", "riff-3", 0.7],
    ["Cold Start", "techno", "Engines in the snow", "cover", "riff-4", 0.9],
]
TODAY = dt.datetime.now(dt.UTC).date().isoformat()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def test_edited_done_rows_are_changed_and_sent_only_when_asked(tmp_path, start_simulator) -> None:
    server = start_simulator()
    output = tmp_path / "out.xlsx"
    source = write_xlsx(tmp_path, [HEADER, *SONGS])
    assert finish(*run_args(source, output, server.url))[0] == 0
    first_ids = {line["title"]: line["job_id"] for line in read_sheet(output, "jobs")}
    edited = [list(song) for song in SONGS]
    edited[1][2] = "Wind over the wheat"  # a lyrics typo fixed (row 3)
    edited[3][5] = 0.8  # a strength changed (row 5)
    source = write_xlsx(tmp_path, [HEADER, *edited])
    code, err = finish(*run_args(source, output, server.url))
    assert code == 1, err
    assert len(server.simulator.accepted) == 4  # nothing sent again
    assert f"row 3: lyrics changed since it was sent on {TODAY}" in err
    assert f"row 5: normalized_weirdness changed since it was sent on {TODAY}" in err
    assert "--resend-changed" in err
    changed = {line["row"]: line for line in read_sheet(output, "failed") if line["state"] == "changed"}
    assert set(changed) == {3, 5} and "lyrics changed" in changed[3]["error"]

    code, err = finish(*run_args(source, output, server.url, "--resend-changed"))
    assert code == 0, err
    no_duplicates(server)
    resent = [entry["body"] for entry in server.simulator.accepted[4:]]
    assert [(body["title"], body["lyrics"]) for body in resent if body["title"] == "Quiet Fields"] == [
        ("Quiet Fields", "Wind over the wheat")
    ]
    assert sorted(body["title"] for body in resent) == ["Cold Start", "Quiet Fields"]
    jobs = read_sheet(output, "jobs")
    own = {(line["row"], line["title"]) for line in jobs if not line["superseded"]}
    assert own == {(2, "Midnight Harbor"), (3, "Quiet Fields"), (4, "Paper Moon"), (5, "Cold Start")}
    superseded = [line for line in jobs if line["superseded"]]
    assert {line["title"] for line in superseded} == {"Quiet Fields", "Cold Start"}
    assert all(line["row"] == "" for line in superseded)  # never shown as the row's own
    assert {line["job_id"] for line in superseded} >= {first_ids["Quiet Fields"], first_ids["Cold Start"]}
    assert finish(*run_args(source, output, server.url))[0] == 0  # and then it is done
    assert len(server.simulator.accepted) == 6


def test_a_csv_re_saved_as_a_workbook_sends_nothing_again(tmp_path, start_simulator) -> None:
    """Excel and LibreOffice read ``007`` as 7 and ``1e3`` as 1000: a title re-read as a number is the same song,
    its request now different (``changed``), never a new one billed again; a date title reads back as it was."""
    server = start_simulator()
    output = tmp_path / "out.xlsx"
    text = "title,tag,lyrics\n007,pop,x\n1e3,rock,w\n2024-01-05,pop,y\nPlain,pop,z\n"
    assert finish(*run_args(write_csv(tmp_path, text), output, server.url))[0] == 0
    resaved = [
        ["title", "tag", "lyrics"],
        [7, "pop", "x"],
        [1000, "rock", "w"],
        [dt.datetime(2024, 1, 5), "pop", "y"],
        ["Plain", "pop", "z"],
    ]
    code, err = finish(*run_args(write_xlsx(tmp_path, resaved), output, server.url))
    assert len(server.simulator.accepted) == 4, [e["body"]["title"] for e in server.simulator.accepted]
    assert code == 1 and "row 2: title changed since it was sent" in err and "row 3: title changed" in err, err
    assert "2 rows were edited since sent, so not sent again" in err, err


def test_an_edit_undone_gives_the_row_its_own_ids_back(tmp_path, start_simulator) -> None:
    """v1 sent, edited to v2 and sent again as asked, then the edit undone: nothing is sent, and the jobs sheet
    shows v1's ids as the row's own again (they were left marked superseded), v2's as no longer in the input."""
    server = start_simulator()
    output = tmp_path / "out.csv"
    for lyrics, extra in (("v1", ()), ("v2", ("--resend-changed",)), ("v1", ())):
        source = write_csv(tmp_path, f"title,tag,lyrics\nS1,pop,{lyrics}\nS2,pop,w\n")
        assert finish(*run_args(source, output, server.url, *extra))[0] == 0
    sent = {entry["body"]["lyrics"]: entry["job_ids"] for entry in server.simulator.accepted}
    assert len(server.simulator.accepted) == 3 and set(sent) == {"v1", "v2", "w"}
    jobs = read_csv(output)
    own = [line for line in jobs if line["title"] == "S1" and line["row"] == "2"]
    assert [line["job_id"] for line in own] == sent["v1"] and all(not line["superseded"] for line in own)
    assert [(line["row"], line["job_id"]) for line in jobs[-2:]] == [("", job_id) for job_id in sent["v2"]]


def test_another_model_for_a_finished_batch_names_its_rows_as_changed(tmp_path, start_simulator) -> None:
    server = start_simulator()
    output = tmp_path / "out.xlsx"
    rows = [["Title", "Tag", "Lyrics", "Model"], *([t, g, ly, ""] for t, g, ly, *_ in SONGS)]
    rows[2][3] = "FUZZ-1.0 Pro"  # one row names its model: not changed by --model
    source = write_xlsx(tmp_path, rows)
    assert finish(*run_args(source, output, server.url))[0] == 0
    code, err = finish(*run_args(source, output, server.url, "--model", "FUZZ-1.1"))
    assert code == 1, err
    assert "another input" not in err
    assert len(server.simulator.accepted) == 4
    changed = sorted(line["row"] for line in read_sheet(output, "failed") if line["state"] == "changed")
    assert changed == [2, 4, 5]
    assert "row 2: model changed since it was sent on" in err


def test_a_lost_journal_and_state_folder_restore_quoted_titles_from_the_output(
    tmp_path, start_simulator, state_dir
) -> None:
    server = start_simulator()
    titles = ["-Intro-", "@home", "+1 Remix", "=Equals", "'Quoted'", "Plain"]
    source = write_csv(tmp_path, "title,tag,lyrics\n" + "".join(f"{t},pop,words {i}\n" for i, t in enumerate(titles)))
    output = tmp_path / "out.csv"
    assert finish(*run_args(source, output, server.url))[0] == 0
    assert {line["title"] for line in read_csv(output)} >= {"'-Intro-", "'@home", "'=Equals", "''Quoted'"}
    journal_path(real(output)).unlink()
    shutil.rmtree(state_dir)  # another machine: no ledger either
    code, err = finish(*run_args(source, output, server.url))
    assert code == 0, err
    assert len(server.simulator.accepted) == 6  # nothing sent again
    assert "6 row(s) restored" in err


def test_a_lost_journal_and_a_fixed_typo_never_give_the_old_ids_to_the_edited_row(
    tmp_path, start_simulator, state_dir
) -> None:
    server = start_simulator()
    output = tmp_path / "out.xlsx"
    assert finish(*run_args(write_xlsx(tmp_path, [HEADER, *SONGS]), output, server.url))[0] == 0
    old = {line["title"]: line["job_id"] for line in read_sheet(output, "jobs")}
    journal_path(real(output)).unlink()
    shutil.rmtree(state_dir)
    edited = [list(song) for song in SONGS]
    edited[2][2] = "Moon made of glass"
    source = write_xlsx(tmp_path, [HEADER, *edited])
    code, err = finish(*run_args(source, output, server.url))
    assert code == 1, err
    assert len(server.simulator.accepted) == 4
    assert "row 4: the request changed since it was sent on" in err
    failed = {line["title"]: line for line in read_sheet(output, "failed")}
    assert failed["Paper Moon"]["state"] == "changed"
    code, err = finish(*run_args(source, output, server.url, "--resend-changed"))
    assert code == 0, err
    assert [entry["body"]["lyrics"] for entry in server.simulator.accepted[4:]] == ["Moon made of glass"]
    jobs = read_sheet(output, "jobs")
    paper = [line for line in jobs if line["title"] == "Paper Moon"]
    assert {line["job_id"] for line in paper if line["row"] == 4}.isdisjoint({old["Paper Moon"]})
    assert all(line["superseded"] for line in paper if line["job_id"] == old["Paper Moon"])


def _ed_sheet(folder: Path, rows: list[tuple[str, str]]) -> Path:
    return write_csv(folder, "title,tag,lyrics\n" + "".join(f"{title},pop,{words}\n" for title, words in rows))


ED = [(f"Ed {i:03d}", f"words {i}") for i in range(1, 11)]


def _edit(rows: list[tuple[str, str]], title: str) -> list[tuple[str, str]]:
    return [(name, f"{words} fixed" if name == title else words) for name, words in rows]


def _moves() -> dict[str, list[tuple[str, str]]]:
    """The sheet after ``Ed 003`` was edited, each with ``Ed 005`` edited too and the rows moved around them."""
    edited = _edit(_edit(ED, "Ed 003"), "Ed 005")
    return {
        "insert above": [("Inserted", "new words"), *edited],
        "delete above": edited[2:],
        "reorder": list(reversed(edited)),
    }


@pytest.mark.parametrize("move", list(_moves()))
def test_edits_stay_changed_whatever_rows_moved_around_them(tmp_path, start_simulator, move) -> None:
    server = start_simulator()
    output = tmp_path / "out.csv"
    assert finish(*run_args(_ed_sheet(tmp_path, ED), output, server.url))[0] == 0
    code, err = finish(*run_args(_ed_sheet(tmp_path, _edit(ED, "Ed 003")), output, server.url))
    assert code == 1 and len(server.simulator.accepted) == 10, err
    sheet = _moves()[move]
    code, err = finish(*run_args(_ed_sheet(tmp_path, sheet), output, server.url))
    assert code == 1, err
    sent = [entry["body"]["title"] for entry in server.simulator.accepted[10:]]
    assert sent == (["Inserted"] if move == "insert above" else [])
    place = {title: number for number, (title, _) in enumerate(sheet, start=2)}
    for title in ("Ed 003", "Ed 005"):
        assert f"row {place[title]}: lyrics changed since it was sent on {TODAY}" in err
    assert f"{len(sheet)} rows: {len(sheet) - 2} done, 2 changed; " in err, err  # an edited song counted once
    changed = {line["title"] for line in read_csv(tmp_path / "out.failed.csv") if line["state"] == "changed"}
    assert changed == {"Ed 003", "Ed 005"}
    # every song of the sheet, edited or not, has its ids on its current row, in its order; deleted ones last
    jobs = list(dict.fromkeys((line["title"], line["row"]) for line in read_csv(output)))  # (two ids a song)
    current = [(title, str(place[title])) for title, _ in sheet]
    assert jobs[: len(current)] == current and not {title for title, _ in jobs[len(current) :]} & set(place)
    code, err = finish(*run_args(_ed_sheet(tmp_path, sheet), output, server.url, "--resend-changed"))
    assert code == 0, err
    resent = sorted((entry["body"]["title"], entry["body"]["lyrics"]) for entry in server.simulator.accepted[10:])
    expected = [("Ed 003", "words 3 fixed"), ("Ed 005", "words 5 fixed")]
    assert resent == sorted([*expected, *([("Inserted", "new words")] if move == "insert above" else [])])


def test_repeated_titles_pair_by_their_fields_then_their_order(tmp_path, start_simulator) -> None:
    server = start_simulator()
    output = tmp_path / "out.csv"

    def sheet(rows: list[tuple[str, str, str]]) -> Path:
        return write_csv(tmp_path, "title,tag,lyrics\n" + "".join(f"{t},{g},{w}\n" for t, g, w in rows))

    takes = [("Take", "pop", "a"), ("Other", "pop", "x"), ("Take", "rock", "b"), ("Take", "jazz", "c")]
    assert finish(*run_args(sheet(takes), output, server.url))[0] == 0
    # both edited takes moved, in the other order: each still pairs with its own earlier take (its tag)
    moved = [("Take", "jazz", "c"), ("Take", "rock", "b2"), ("New", "pop", "y"), ("Other", "pop", "x")]
    moved.append(("Take", "pop", "a2"))
    code, err = finish(*run_args(sheet(moved), output, server.url))
    assert code == 1, err
    assert [entry["body"]["title"] for entry in server.simulator.accepted[4:]] == ["New"]
    assert f"row 3: lyrics changed since it was sent on {TODAY}" in err
    assert f"row 6: lyrics changed since it was sent on {TODAY}" in err
    changed = [line["row"] for line in read_csv(tmp_path / "out.failed.csv") if line["state"] == "changed"]
    assert changed == ["3", "6"]
    code, err = finish(*run_args(sheet(moved), output, server.url, "--resend-changed"))
    assert code == 0, err
    assert sorted(entry["body"]["lyrics"] for entry in server.simulator.accepted[5:]) == ["a2", "b2"]
    superseded = {line["job_id"]: line["superseded"] for line in read_csv(output) if line["superseded"]}
    assert sorted(superseded.values()) == sorted(
        ["sent before an edit; row 6 was sent again"] * 2 + ["sent before an edit; row 3 was sent again"] * 2
    )


def test_shards_of_one_sheet_to_one_output_are_not_edits_of_each_other(tmp_path, start_simulator) -> None:
    """Rows outside ``--rows`` are still in the input: a take of a repeated title in tonight's shard is not an
    edit of last night's take, and an edit is still one whatever shard it falls in."""
    server = start_simulator()
    output = tmp_path / "out.csv"
    takes = [("Intro", "pop", "a"), ("Intro", "rock", "b"), ("Song A", "pop", "c")]
    takes += [("Song B", "pop", "d"), ("Intro", "jazz", "e"), ("Song C", "pop", "f")]

    def sheet(rows: list[tuple[str, str, str]]) -> Path:
        return write_csv(tmp_path, "title,tag,lyrics\n" + "".join(f"{t},{g},{w}\n" for t, g, w in rows))

    assert finish(*run_args(sheet(takes), output, server.url, "--rows", "2-4"))[0] == 0
    code, err = finish(*run_args(sheet(takes), output, server.url, "--rows", "5-7"))
    assert code == 0, err
    assert "changed" not in err
    assert sorted(entry["body"]["title"] for entry in server.simulator.accepted) == sorted(t for t, _, _ in takes)
    edited = [("Inserted", "pop", "n"), *takes[:1], ("Intro", "rock", "b2"), *takes[2:]]  # row 3 now row 4
    code, err = finish(*run_args(sheet(edited), output, server.url, "--rows", "2-4"))
    assert code == 1, err
    assert f"row 4: lyrics changed since it was sent on {TODAY}" in err
    assert [entry["body"]["title"] for entry in server.simulator.accepted[6:]] == ["Inserted"]
    code, err = finish(*run_args(sheet(edited), output, server.url, "--rows", "2-4", "--resend-changed"))
    assert code == 0, err
    assert [entry["body"]["lyrics"] for entry in server.simulator.accepted[7:]] == ["b2"]
    superseded = {line["title"] for line in read_csv(output) if line["superseded"]}
    assert superseded == {"Intro"} and len([line for line in read_csv(output) if line["superseded"]]) == 2
    no_duplicates(server)


def test_rows_in_flight_at_a_kill_9_and_then_edited_are_changed_not_sent(tmp_path, start_simulator) -> None:
    """A crash leaves rows whose request left (the provider bills them a moment later): edited, with a row
    inserted above them, they are ``changed`` like a done row, never sent again."""
    server = start_simulator(latency_ms=1500)
    output = tmp_path / "out.csv"
    child = spawn(*run_args(_ed_sheet(tmp_path, ED), output, server.url, "--concurrency", "4"))
    try:
        wait_for(lambda: len(server.simulator.received) >= 4)
        time.sleep(0.3)
    finally:
        child.kill()
        child.communicate()
    wait_for(lambda: len(server.simulator.accepted) == len(server.simulator.received))  # billed after the crash
    flying = sorted(entry["body"]["title"] for entry in server.simulator.accepted)
    sheet = ED
    for title in flying:
        sheet = _edit(sheet, title)
    sheet = [("Inserted", "new words"), *sheet]
    code, err = finish(*run_args(_ed_sheet(tmp_path, sheet), output, server.url))
    assert code == 1, err
    place = {title: number for number, (title, _) in enumerate(sheet, start=2)}
    for title in flying:
        assert f"row {place[title]}: lyrics changed since it was sent on {TODAY}" in err
    sent = sorted(entry["body"]["title"] for entry in server.simulator.accepted)
    assert sent == sorted(["Inserted", *(title for title, _ in ED)])  # each song once, none of the edits
    changed = {line["title"] for line in read_csv(tmp_path / "out.failed.csv") if line["state"] == "changed"}
    assert changed == set(flying)


def test_an_edit_an_inserted_row_moved_into_another_shards_output_is_not_sent(tmp_path, start_simulator) -> None:
    """Shards by row number to two outputs; a row inserted at the top moves an edited row across the boundary:
    the edit is still an edit of a paid song, and the other output's run must not bill it again."""
    server = start_simulator()
    assert finish(*run_args(_ed_sheet(tmp_path, ED), tmp_path / "a.csv", server.url, "--rows", "2-6"))[0] == 0
    assert finish(*run_args(_ed_sheet(tmp_path, ED), tmp_path / "b.csv", server.url, "--rows", "7-11"))[0] == 0
    sheet = [("Inserted", "new words"), *_edit(ED, "Ed 005")]  # Ed 005 was row 6 (shard a), now row 7 (shard b)
    assert finish(*run_args(_ed_sheet(tmp_path, sheet), tmp_path / "a.csv", server.url, "--rows", "2-6"))[0] == 0
    code, err = finish(*run_args(_ed_sheet(tmp_path, sheet), tmp_path / "b.csv", server.url, "--rows", "7-12"))
    assert [entry["body"]["title"] for entry in server.simulator.accepted[10:]] == ["Inserted"], err
    assert code == 1 and f"row 7: lyrics changed since it was sent on {TODAY}" in err
    assert "--resend-changed" in err
    args = run_args(_ed_sheet(tmp_path, sheet), tmp_path / "b.csv", server.url, "--rows", "7-12", "--resend-changed")
    code, err = finish(*args)
    assert code == 0, err
    assert [entry["body"]["lyrics"] for entry in server.simulator.accepted[11:]] == ["words 5 fixed"]


def test_an_edit_sent_before_the_output_and_its_journal_were_deleted_is_changed_not_sent(
    tmp_path, start_simulator
) -> None:
    """The output and its journal are gone, the ledger is kept: the done rows come back from the ledger, and an
    edited row (a new key) is known by its title's fingerprint there, wherever it now stands."""
    server = start_simulator()
    output = tmp_path / "out.csv"
    assert finish(*run_args(_ed_sheet(tmp_path, ED), output, server.url))[0] == 0
    for path in tmp_path.glob("out.*"):
        path.unlink()
    sheet = [("Inserted", "new words"), *_edit(ED, "Ed 005")]
    code, err = finish(*run_args(_ed_sheet(tmp_path, sheet), output, server.url))
    assert [entry["body"]["title"] for entry in server.simulator.accepted[10:]] == ["Inserted"], err
    assert code == 1 and f"row 7: lyrics changed since it was sent on {TODAY}" in err
    assert "--resend-changed" in err
    assert [line["row"] for line in read_csv(tmp_path / "out.failed.csv") if line["state"] == "changed"] == ["7"]
    code, err = finish(*run_args(_ed_sheet(tmp_path, sheet), output, server.url, "--resend-changed"))
    assert code == 0, err
    assert [entry["body"]["lyrics"] for entry in server.simulator.accepted[11:]] == ["words 5 fixed"]
    no_duplicates(server)


def test_a_ledger_rebuilt_from_a_journal_knows_the_songs_it_sent(tmp_path, start_simulator, state_dir) -> None:
    """The ledger lost (a new state folder), the journal kept: the next run on that output writes its rows back
    with their fingerprints, so an edit moved into another shard is still known."""
    server = start_simulator()
    assert finish(*run_args(_ed_sheet(tmp_path, ED), tmp_path / "a.csv", server.url, "--rows", "2-6"))[0] == 0
    for path in state_dir.glob("ledger.sqlite*"):
        path.unlink()
    assert finish(*run_args(_ed_sheet(tmp_path, ED), tmp_path / "a.csv", server.url, "--rows", "2-6"))[0] == 0
    sheet = [("Inserted", "new words"), *_edit(ED[:5], "Ed 005")]  # Ed 005 was row 6 (shard a), now row 7
    code, err = finish(*run_args(_ed_sheet(tmp_path, sheet), tmp_path / "b.csv", server.url, "--rows", "7"))
    assert code == 1 and f"row 7: lyrics changed since it was sent on {TODAY}" in err, err
    assert len(server.simulator.accepted) == 5


def test_takes_of_one_title_in_shards_to_two_outputs_are_not_edits_of_each_other(tmp_path, start_simulator) -> None:
    """Rows that only look alike (one title, both still in the sheet) are two songs, whichever output sent the
    first: the ledger's fingerprints match an edit, never a row of the input."""
    server = start_simulator()
    takes = [("Intro", "words a"), ("Song A", "words b"), ("Intro", "words c"), ("Song B", "words d")]
    assert finish(*run_args(_ed_sheet(tmp_path, takes), tmp_path / "a.csv", server.url, "--rows", "2-3"))[0] == 0
    code, err = finish(*run_args(_ed_sheet(tmp_path, takes), tmp_path / "b.csv", server.url, "--rows", "4-5"))
    assert code == 0 and "changed" not in err, err
    assert len(server.simulator.accepted) == 4


def test_a_song_of_another_sheet_sharing_a_title_sent_before_is_another_song(tmp_path, start_simulator) -> None:
    """Two albums, each with its ``Intro``, each to its own output: the outputs share no row, only a title, so
    the second ``Intro`` is a new song, not an edit of the first."""
    server = start_simulator()
    first = [("Intro", "album one"), ("Ed 001", "words 1")]
    assert finish(*run_args(_ed_sheet(tmp_path, first), tmp_path / "one.csv", server.url))[0] == 0
    second = [("Intro", "album two"), ("Ed 002", "words 2")]
    code, err = finish(*run_args(_ed_sheet(tmp_path, second), tmp_path / "two.csv", server.url))
    assert code == 0 and "changed" not in err, err
    assert len(server.simulator.accepted) == 4


def test_an_edit_of_a_row_skipped_as_sent_elsewhere_is_changed_not_sent(tmp_path, start_simulator) -> None:
    """This output listed the row ``skipped`` (the ledger: paid through another output); edited, with a row
    inserted above it, it is still a paid song: ``changed``, not billed again."""
    server = start_simulator()
    source = _ed_sheet(tmp_path, ED[:3])
    assert finish(*run_args(source, tmp_path / "a.csv", server.url, "--max-requests", "2"))[0] == 1
    code, err = finish(*run_args(source, tmp_path / "b.csv", server.url))
    assert code == 1 and "2 rows were already sent to another output" in err, err
    sheet = [("Inserted", "new words"), *_edit(ED[:3], "Ed 001")]
    code, err = finish(*run_args(_ed_sheet(tmp_path, sheet), tmp_path / "b.csv", server.url))
    assert code == 1, err
    assert [entry["body"]["title"] for entry in server.simulator.accepted[3:]] == ["Inserted"]
    assert f"row 3: lyrics changed since it was sent on {TODAY}" in err
    code, err = finish(*run_args(_ed_sheet(tmp_path, sheet), tmp_path / "b.csv", server.url, "--resend-changed"))
    assert [entry["body"]["lyrics"] for entry in server.simulator.accepted[4:]] == ["words 1 fixed"], err


def test_an_unknown_row_edited_since_is_changed_and_its_earlier_request_never_sent(tmp_path, start_simulator) -> None:
    from batchgen.simulator import Faults

    server = start_simulator(Faults(script=["accept_drop"]))
    output = tmp_path / "out.csv"

    def sheet(first_lyrics: str) -> Path:
        return write_csv(tmp_path, f"title,tag,lyrics\nA,pop,{first_lyrics}\nB,pop,b\nC,pop,c\n")

    code, err = finish(*run_args(sheet("a"), output, server.url, "--concurrency", "1"))
    assert code == 1 and "1 row is unknown" in err, err
    code, err = finish(*run_args(sheet("a fixed"), output, server.url, "--concurrency", "1"))
    assert code == 1 and "3 rows: 2 done, 1 changed; 0 requests sent" in err, err  # the song once, changed
    received = len(server.simulator.received)
    code, err = finish(*run_args(sheet("a fixed"), output, server.url, "--retry-unknown"))
    assert len(server.simulator.received) == received, err  # the earlier version's request is never sent again
