"""The column-stats demo service: job input JSON on stdin, result JSON on stdout.

Reads ../artifacts/<artifact_name> (the service runs in <store>/services) and returns count,
mean, min and max of every numeric column. Errors go to stderr with a non-zero exit, which
makes the job `failed` with that message.
"""
import csv
import json
import os
import sys

request = json.load(sys.stdin)
name = request.get("artifact_name", "")
artifacts = os.path.realpath(os.path.join(os.getcwd(), "..", "artifacts"))
path = os.path.realpath(os.path.join(artifacts, name))
if not name or not path.startswith(artifacts + os.sep) or not os.path.isfile(path):
    sys.exit(f"no CSV artifact named {name!r} in this store; call list_artifacts")

with open(path, newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
wanted = request.get("columns") or (list(rows[0].keys()) if rows else [])
stats = {}
for column in wanted:
    try:
        values = [float(row[column]) for row in rows if row.get(column, "") != ""]
    except (KeyError, ValueError):
        continue
    if values:
        stats[column] = {
            "count": len(values),
            "mean": round(sum(values) / len(values), 4),
            "min": min(values),
            "max": max(values),
        }
if not stats:
    sys.exit(f"{name!r} has no numeric column among {wanted}")
json.dump({"artifact_name": name, "rows": len(rows), "columns": stats}, sys.stdout)
