"""Google's own Python client (google-api-python-client, static discovery) against the Sheets
emulator, used the way a new user would: every spreadsheets.values method, batchUpdate,
get with grid data, and the errors the client shows.

Run by tests/integration/sheets_fidelity.rs as `python sheets_client.py <stage-url> <api-key>`;
prints one line per checked method and `ALL OK` at the end; any mismatch raises.
"""

import sys

from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

STAGE, KEY = sys.argv[1], sys.argv[2]


def client(key):
    # The recipe the README gives: the Stage key as the developer key, the emulator as the
    # endpoint, the discovery document shipped with the client.
    return build(
        "sheets",
        "v4",
        developerKey=key,
        client_options={"api_endpoint": STAGE + "/api/v1/sheets/"},
        static_discovery=True,
    )


def expect(actual, expected, what):
    if actual != expected:
        raise AssertionError(f"{what}: got {actual!r}, expected {expected!r}")
    print(f"ok {what}")


def expect_keys(answer, keys, what):
    expect(sorted(answer.keys()), sorted(keys), what + " keys")


def expect_error(call, status, message_start, what):
    try:
        call.execute()
    except HttpError as error:
        expect(error.resp.status, status, what + " status")
        reason = error._get_reason()
        if not reason.startswith(message_start):
            raise AssertionError(f"{what}: reason {reason!r} does not start with {message_start!r}")
        print(f"ok {what} message")
        return
    raise AssertionError(f"{what}: no error")


sheets = client(KEY)
spreadsheets = sheets.spreadsheets()
values = spreadsheets.values()

# spreadsheets.create: Google's Spreadsheet.
created = spreadsheets.create(
    body={"properties": {"title": "Client"}, "sheets": [{"properties": {"title": "Events"}}]}
).execute()
expect_keys(created, ["spreadsheetId", "properties", "sheets", "spreadsheetUrl"], "create")
sid = created["spreadsheetId"]
expect(created["sheets"][0]["properties"]["title"], "Events", "create sheet title")
expect(created["spreadsheetUrl"], f"{STAGE}/api/v1/sheets/v4/spreadsheets/{sid}", "create spreadsheetUrl")

# values.append to a bounded range finds the table below it.
for row in ["r1", "r2", "r3", "r4"]:
    appended = values.append(
        spreadsheetId=sid, range="Events!A1", valueInputOption="RAW", body={"values": [[row, 2]]}
    ).execute()
expect_keys(appended, ["spreadsheetId", "tableRange", "updates"], "append")
expect(appended["tableRange"], "Events!A1:B3", "append tableRange")
expect(
    appended["updates"],
    {"spreadsheetId": sid, "updatedRange": "Events!A4:B4", "updatedRows": 1, "updatedColumns": 2, "updatedCells": 2},
    "append updates",
)
appended = values.append(
    spreadsheetId=sid,
    range="Events!A:B",
    valueInputOption="USER_ENTERED",
    insertDataOption="INSERT_ROWS",
    includeValuesInResponse=True,
    body={"values": [["r5", "=B4*2"]]},
).execute()
expect(appended["updates"]["updatedData"]["values"], [["r5", "4"]], "append updatedData computed")

# values.get with each render option.
got = values.get(spreadsheetId=sid, range="Events!A1:B5").execute()
expect(
    got,
    {
        "range": "Events!A1:B5",
        "majorDimension": "ROWS",
        "values": [["r1", "2"], ["r2", "2"], ["r3", "2"], ["r4", "2"], ["r5", "4"]],
    },
    "get",
)

# values.update with USER_ENTERED: formulas, dates and currency.
updated = values.update(
    spreadsheetId=sid,
    range="Events!D1",
    valueInputOption="USER_ENTERED",
    body={"values": [["=SUM(B1:B5)", "2024-03-04", "$1,000", "=1/0", "=NOPE()"]]},
).execute()
expect(
    updated,
    {"spreadsheetId": sid, "updatedRange": "Events!D1:H1", "updatedRows": 1, "updatedColumns": 5, "updatedCells": 5},
    "update",
)
row = lambda **options: values.get(spreadsheetId=sid, range="Events!D1:H1", **options).execute()["values"][0]
expect(row(), ["12", "2024-03-04", "$1,000", "#DIV/0!", "#NAME?"], "FORMATTED_VALUE")
expect(row(valueRenderOption="UNFORMATTED_VALUE"), [12, 45355, 1000, "#DIV/0!", "#NAME?"], "UNFORMATTED_VALUE")
expect(
    row(valueRenderOption="UNFORMATTED_VALUE", dateTimeRenderOption="FORMATTED_STRING"),
    [12, "2024-03-04", 1000, "#DIV/0!", "#NAME?"],
    "dateTimeRenderOption FORMATTED_STRING",
)
expect(row(valueRenderOption="FORMULA"), ["=SUM(B1:B5)", 45355, 1000, "=1/0", "=NOPE()"], "FORMULA")

# values.batchGet, batchUpdate, clear, batchClear.
batch = values.batchGet(spreadsheetId=sid, ranges=["Events!A1:A2", "Events!D1"], majorDimension="COLUMNS").execute()
expect_keys(batch, ["spreadsheetId", "valueRanges"], "batchGet")
expect(
    batch["valueRanges"],
    [
        {"range": "Events!A1:A2", "majorDimension": "COLUMNS", "values": [["r1", "r2"]]},
        {"range": "Events!D1", "majorDimension": "COLUMNS", "values": [["12"]]},
    ],
    "batchGet valueRanges",
)
batch = values.batchUpdate(
    spreadsheetId=sid,
    body={
        "valueInputOption": "RAW",
        "data": [{"range": "Events!J1", "values": [["j1"], ["j2"]]}, {"range": "Events!K1", "values": [["k1"]]}],
    },
).execute()
expect_keys(
    batch,
    ["spreadsheetId", "totalUpdatedRows", "totalUpdatedColumns", "totalUpdatedCells", "totalUpdatedSheets", "responses"],
    "batchUpdate",
)
expect((batch["totalUpdatedCells"], batch["totalUpdatedSheets"], len(batch["responses"])), (3, 1, 2), "batchUpdate totals")
cleared = values.clear(spreadsheetId=sid, range="Events!J1:J2", body={}).execute()
expect(cleared, {"spreadsheetId": sid, "clearedRange": "Events!J1:J2"}, "clear")
cleared = values.batchClear(spreadsheetId=sid, body={"ranges": ["Events!K1"]}).execute()
expect(cleared, {"spreadsheetId": sid, "clearedRanges": ["Events!K1"]}, "batchClear")
expect(values.get(spreadsheetId=sid, range="Events!J1:K2").execute().get("values"), None, "cleared values")

# The ByDataFilter variants.
grid_range = {"gridRange": {"sheetId": created["sheets"][0]["properties"]["sheetId"], "startRowIndex": 0, "endRowIndex": 1,
                            "startColumnIndex": 9, "endColumnIndex": 10}}
written = values.batchUpdateByDataFilter(
    spreadsheetId=sid,
    body={"valueInputOption": "RAW", "data": [{"dataFilter": grid_range, "values": [["by filter"]]}]},
).execute()
expect(written["responses"][0]["updatedRange"], "Events!J1", "batchUpdateByDataFilter")
read = values.batchGetByDataFilter(spreadsheetId=sid, body={"dataFilters": [{"a1Range": "Events!J1"}]}).execute()
expect(read["valueRanges"][0]["valueRange"]["values"], [["by filter"]], "batchGetByDataFilter")
cleared = values.batchClearByDataFilter(spreadsheetId=sid, body={"dataFilters": [grid_range]}).execute()
expect(cleared["clearedRanges"], ["Events!J1"], "batchClearByDataFilter")

# spreadsheets.batchUpdate: sheets, cells, formats, dimensions.
replies = spreadsheets.batchUpdate(
    spreadsheetId=sid,
    body={
        "requests": [
            {"addSheet": {"properties": {"title": "Totals", "gridProperties": {"frozenRowCount": 1}}}},
            {
                "repeatCell": {
                    "range": {"sheetId": 0, "startRowIndex": 0, "endRowIndex": 1, "startColumnIndex": 4, "endColumnIndex": 5},
                    "cell": {"userEnteredFormat": {"numberFormat": {"type": "DATE", "pattern": "dd mmm yyyy"}, "textFormat": {"bold": True}}},
                    "fields": "userEnteredFormat(numberFormat,textFormat)",
                }
            },
            {"insertDimension": {"range": {"sheetId": 0, "dimension": "ROWS", "startIndex": 0, "endIndex": 1}}},
            {"deleteDimension": {"range": {"sheetId": 0, "dimension": "ROWS", "startIndex": 0, "endIndex": 1}}},
        ]
    },
).execute()
expect_keys(replies, ["spreadsheetId", "replies"], "batchUpdate (spreadsheet)")
totals = replies["replies"][0]["addSheet"]["properties"]
expect((totals["title"], totals["index"], totals["gridProperties"]["frozenRowCount"]), ("Totals", 1, 1), "addSheet reply")
spreadsheets.batchUpdate(
    spreadsheetId=sid,
    body={"requests": [
        {"appendCells": {"sheetId": totals["sheetId"], "fields": "userEnteredValue",
                         "rows": [{"values": [{"userEnteredValue": {"formulaValue": "=Events!D1*2"}}]}]}},
        {"updateSheetProperties": {"properties": {"sheetId": totals["sheetId"], "title": "Sums"}, "fields": "title"}},
    ]},
).execute()
expect(values.get(spreadsheetId=sid, range="Sums!A1").execute()["values"], [["24"]], "cross-sheet formula")
expect(values.get(spreadsheetId=sid, range="Events!E1").execute()["values"], [["04 Mar 2024"]], "repeatCell numberFormat")

# spreadsheets.get with grid data and a field mask; getByDataFilter.
grid = spreadsheets.get(spreadsheetId=sid, ranges=["Events!E1"], includeGridData=True).execute()
cell = grid["sheets"][0]["data"][0]["rowData"][0]["values"][0]
expect(
    cell["userEnteredFormat"],
    {"numberFormat": {"type": "DATE", "pattern": "dd mmm yyyy"}, "textFormat": {"bold": True}},
    "userEnteredFormat kept",
)
expect((cell["formattedValue"], cell["effectiveValue"]), ("04 Mar 2024", {"numberValue": 45355}), "grid data values")
masked = spreadsheets.get(spreadsheetId=sid, fields="sheets.properties.title").execute()
expect(masked, {"sheets": [{"properties": {"title": "Events"}}, {"properties": {"title": "Sums"}}]}, "fields mask")
filtered = spreadsheets.getByDataFilter(spreadsheetId=sid, body={"dataFilters": [{"a1Range": "Sums!A1"}]}).execute()
expect([s["properties"]["title"] for s in filtered["sheets"]], ["Sums"], "getByDataFilter")

# Errors as Google's client shows them.
expect_error(values.get(spreadsheetId=sid, range="Nope!A1"), 400, "Unable to parse range: Nope!A1", "bad range")
expect_error(spreadsheets.get(spreadsheetId="not-a-sheet"), 404, "Requested entity was not found.", "unknown spreadsheet")
expect_error(
    values.update(spreadsheetId=sid, range="Events!A1", body={"values": [["x"]]}),
    400,
    "'valueInputOption' is required but not specified",
    "missing valueInputOption",
)
expect_error(
    client("not-a-stage-key").spreadsheets().get(spreadsheetId=sid),
    401,
    "Request had invalid authentication credentials",
    "wrong key",
)
print("ALL OK")
