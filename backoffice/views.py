"""Reports and the dashboard as JSON for the API and as chart data for the pages. Money stays
integer fen in both; the browser formats it for display only."""

from ledger.reports.dashboard import Dashboard
from ledger.reports.table import Report


def report_json(report: Report) -> dict:
    return {
        "name": report.name, "title_en": report.title_en, "title_zh": report.title_zh, "scope": report.scope_text,
        "tables": [{"title_en": table.title_en, "title_zh": table.title_zh,
                    "columns": [{"key": c.key, "en": c.en, "zh": c.zh, "kind": c.kind} for c in table.columns],
                    "rows": table.as_dicts(),
                    "totals": dict(zip([c.key for c in table.columns], table.totals)) if table.totals else None}
                   for table in report.tables],
        "notes": report.notes,
    }


def report_chart(report: Report) -> dict | None:
    """{kind, labels, series: [{name, values (fen)}]} for the page's chart, or None."""
    chart = report.chart
    if chart is None or not report.tables[chart.table].rows:
        return None
    table = report.tables[chart.table]
    names = {column.key: f"{column.zh} {column.en}" for column in table.columns}
    return {"kind": chart.kind, "labels": [str(label) for label in table.column(chart.label_key)],
            "series": [{"name": names[key], "values": table.column(key)} for key in chart.value_keys],
            "money": True}


def dashboard_json(board: Dashboard) -> dict:
    result = {
        "business_day": board.business_day,
        "terminals": [{"terminal": line.terminal_id, "station": line.station_id, "is_online": line.is_online,
                       "queue_depth": line.queue_depth, "highest_seq": line.highest_seq,
                       "last_seen_ms": line.last_seen_ms, "is_retired": line.is_retired,
                       "printer": line.printer_state, "software_version": line.software_version}
                      for line in board.terminals],
        "alerts": [{"time_ms": time_ms, "kind": kind, "detail": detail} for time_ms, kind, detail in board.alerts],
        "set_aside_held": board.set_aside_held,
    }
    if board.money is not None:
        result["money"] = board.money
        result["by_station"] = [{"station": s, "sales": n, "net_fen": fen} for s, n, fen in board.by_station]
        result["by_hour"] = [{"hour": h, "sales": n, "net_fen": fen} for h, n, fen in board.by_hour]
        result["chart"] = {"kind": "bar", "labels": [f"{h:02d}:00" for h, _, _ in board.by_hour],
                           "series": [{"name": "净销售额 Net sales", "values": [fen for _, _, fen in board.by_hour]}],
                           "money": True}
    return result
