"""The template batchgen writes: its columns, validations and examples, and that it never overwrites a catalog."""

from __future__ import annotations

from pathlib import Path

import openpyxl


def test_template_has_every_column_validation_and_examples(tmp_path: Path, cli) -> None:
    path = tmp_path / "catalog.xlsx"
    assert cli("template", path).code == 0
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Catalog", "Examples", "How to fill"]
    catalog = book["Catalog"]
    assert catalog.freeze_panes == "A2"
    rules = {str(rule.sqref).split(":")[0][:-1]: rule for rule in catalog.data_validations.dataValidation}
    assert rules["D"].type == "list" and rules["D"].formula1 == '"FUZZ-1.0,FUZZ-1.1,FUZZ-1.0 Pro,FUZZ-1.1 Pro"'
    assert rules["F"].formula1 == '"cover,extend,inpaint,swap_vocals,swap_sound"'
    assert rules["E"].formula1 == '"TRUE,FALSE"'
    assert (rules["I"].type, rules["I"].formula1, rules["I"].formula2) == ("decimal", "0", "1")
    assert (rules["N"].type, rules["N"].operator, rules["N"].formula1) == ("decimal", "greaterThanOrEqual", "0")
    assert all(rule.promptTitle and rule.prompt for rule in rules.values()) and len(rules) == 17
    examples = cli("validate", path, "--sheet", "Examples")
    assert examples.code == 0 and "7 rows, all valid" in examples.out
    assert "has no data rows" in cli("validate", path).err  # the catalog itself starts empty: no example is sent
    assert "Header also accepted as: normalized_weirdness, normalised weirdness, Weirdness." in rules["K"].prompt
    guide = [row[0].value for row in book["How to fill"].iter_rows()]
    assert (
        "normalized_cover_strength:  normalized_cover_strength, Normalized Cover Strength, normalised cover "
        "strength, Cover Strength" in guide
    )


def test_template_never_overwrites_a_filled_catalog(tmp_path: Path, cli) -> None:
    path = tmp_path / "catalog.xlsx"
    path.write_bytes(b"my filled catalog")
    refused = cli("template", path)
    assert refused.code == 2
    assert refused.err.strip() == (
        f"error: {path} already exists (a filled catalog?); choose another name, or pass --force to replace it"
    )
    assert path.read_bytes() == b"my filled catalog"
    assert cli("template", path, "--force").code == 0 and path.read_bytes()[:2] == b"PK"
