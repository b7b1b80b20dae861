"""Fill a workbook's first sheet in LibreOffice and save it as xlsx, as a person would. Run by Debian's python3
(which has LibreOffice's ``uno`` module), not by the project's interpreter:

    /usr/bin/python3 fill.py PIPE_NAME SOURCE.xlsx TARGET.xlsx ROWS.json

ROWS.json is a list of rows, each a list of [cell, kind, value] with kind "string", "value" or "formula".
"""

import json
import sys
import time

import uno
from com.sun.star.beans import PropertyValue


def prop(name, value):
    found = PropertyValue()
    found.Name, found.Value = name, value
    return found


def connect(pipe):
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
    deadline = time.monotonic() + 60
    while True:
        try:
            return resolver.resolve(f"uno:pipe,name={pipe};urp;StarOffice.ComponentContext")
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def main(pipe, source, target, rows_file):
    context = connect(pipe)
    desktop = context.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", context)
    document = desktop.loadComponentFromURL(uno.systemPathToFileUrl(source), "_blank", 0, (prop("Hidden", True),))
    sheet = document.Sheets.getByIndex(0)
    with open(rows_file, encoding="utf-8") as handle:
        for row in json.load(handle):
            for cell, kind, value in row:
                target_cell = sheet.getCellRangeByName(cell)
                {"string": target_cell.setString, "value": target_cell.setValue, "formula": target_cell.setFormula}[
                    kind
                ](value)
    document.storeToURL(uno.systemPathToFileUrl(target), (prop("FilterName", "Calc MS Excel 2007 XML"),))
    document.close(True)


if __name__ == "__main__":
    main(*sys.argv[1:])
