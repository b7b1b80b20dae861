"""Open an output workbook in LibreOffice and tell what its ``night`` sheet shows, as a person opening it would see
it: the sheet's names, where the figures' header is, their first line, the last row used, and each chart with its
types and series (name, number of values). Run by Debian's python3 (which has LibreOffice's ``uno`` module), not by
the project's interpreter:

    /usr/bin/python3 night.py PIPE_NAME OUTPUT.xlsx FOUND.json [SHEET.pdf]

With SHEET.pdf, the night sheet alone (the others removed from the copy in memory) is also printed, as it prints.
"""

import json
import sys

import uno
from fill import connect, prop


def series(chart_type):
    """Each series of a chart type: its name and how many values it draws."""
    found = []
    for one in chart_type.getDataSeries():
        name, values = "", 0
        for sequence in one.getDataSequences():
            if sequence.getValues().Role == "values-y":
                values = len(sequence.getValues().getData())
                label = sequence.getLabel()
                name = "".join(str(part) for part in label.getData()) if label else ""
        found.append([name, values])
    return found


def main(pipe, workbook, found_file, printed=None):
    context = connect(pipe)
    desktop = context.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", context)
    document = desktop.loadComponentFromURL(uno.systemPathToFileUrl(workbook), "_blank", 0, (prop("Hidden", True),))
    night = document.Sheets.getByName("night")
    cursor = night.createCursor()
    cursor.gotoEndOfUsedArea(False)
    header = next(row for row in range(200) if night.getCellByPosition(0, row).getString() == "minute (UTC)")
    charts = []
    for index in range(night.getCharts().getCount()):
        chart = night.getCharts().getByIndex(index).getEmbeddedObject()
        title = chart.getTitleObject()
        types = [
            [chart_type.getChartType(), series(chart_type)]
            for system in chart.getFirstDiagram().getCoordinateSystems()
            for chart_type in system.getChartTypes()
        ]
        charts.append({"title": title.getText()[0].getString() if title else "", "types": types})
    found = {
        "sheets": list(document.Sheets.getElementNames()),
        "header_row": header,
        "last_row": cursor.getRangeAddress().EndRow,
        "first": [night.getCellByPosition(column, header + 1).getValue() for column in range(6)],
        "charts": charts,
    }
    with open(found_file, "w", encoding="utf-8") as handle:
        json.dump(found, handle)
    if printed:
        for name in found["sheets"]:
            if name != "night":
                document.Sheets.removeByName(name)
        document.storeToURL(uno.systemPathToFileUrl(printed), (prop("FilterName", "calc_pdf_Export"),))
    document.close(True)


if __name__ == "__main__":
    main(*sys.argv[1:])
