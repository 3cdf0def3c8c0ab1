#!/usr/bin/env bash
# The official MCP Inspector CLI (@modelcontextprotocol/inspector, pinned in tools/clients)
# drives ivcap-mcp in local mode: tools/list with the Inspector's schema lint (--strict fails
# on any error-level finding), then upload text -> get_service -> submit_job -> add_aspect ->
# list_aspects -> search. Any failed call (the Inspector exits non-zero on isError) fails the
# script. CI runs it (.ci/run).
#
#   examples/inspector.sh [STORE]
#
# STORE defaults to a fresh copy of examples/demo-store (the repository copy is never written).
# The server is `ivcap-mcp` from PATH, or the program named by IVCAP_MCP.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/tools/clients/install.sh"
server=${IVCAP_MCP:-ivcap-mcp}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The Inspector keeps a catalog and secrets under HOME; keep this run's in the temp folder.
export HOME="$work/home" MCP_CATALOG_PATH="$work/catalog.json"
mkdir -p "$HOME"
if [ $# -gt 0 ]; then
  store=$1
else
  store="$work/demo-store"
  cp -R "$root/examples/demo-store" "$store"
fi
inspector=(node "$root/tools/clients/node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js" --cli)

# Runs one MCP method; the result JSON goes to $work/out.json.
mcp() {
  "${inspector[@]}" --format json --quiet "$server" --local "$store" "$@" >"$work/out.json"
}
# Calls a tool with a JSON object of arguments.
tool() {
  mcp --method tools/call --tool-name "$1" --tool-args-json "$2"
  echo "$1: ok"
}
# Prints a value of the last result: a JavaScript expression over `r` (the result object).
get() {
  node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).result; const v = eval(process.argv[2]); if (v === undefined) { console.error("missing: " + process.argv[2]); process.exit(1); } console.log(typeof v === "string" ? v : JSON.stringify(v));' "$work/out.json" "$1"
}
# Fails unless the last result's JavaScript expression is true.
check() {
  [ "$(get "$1")" = true ] || { echo "inspector.sh: expected $1 in: $(cat "$work/out.json")" >&2; exit 1; }
}

# The lint's findings go to a file: errors fail the run, and so does any warning but the one
# expected, which is explained. A job's `result` is whatever the service returns (JSON of any
# type, or text), so its schema is `{}` on purpose: the lint calls that an untyped schema.
if ! "${inspector[@]}" --format json --strict "$server" --local "$store" --method tools/list >"$work/out.json" 2>"$work/lint.txt"; then
  cat "$work/lint.txt" >&2
  exit 1
fi
# One "tool path" line per finding.
findings=$(awk '/^(Warning|Error): tool "/ { match($0, /"[^"]+"/); tool = substr($0, RSTART + 1, RLENGTH - 2) }
                /^  Path: / { print tool, $2 }' "$work/lint.txt")
expected='^(get_job|submit_job) outputSchema\.properties\.result$'
if printf '%s\n' "$findings" | grep . | grep -qvE "$expected"; then
  echo "inspector.sh: schema lint findings not explained here:" >&2
  cat "$work/lint.txt" >&2
  exit 1
fi
explained=$(printf '%s\n' "$findings" | grep -cE "$expected" || true)
echo "tools/list: $(get 'r.tools.length') tools; schema lint: no findings but $explained untyped job results (get_job, submit_job: any JSON value, as the service returns it)"

tool upload_artifact '{"name": "soil-temperature.csv", "content": "site,depth_m,temperature_c\nA,0.5,14.2\nA,1.0,13.1\nB,0.5,15.0\nB,1.0,13.8\n"}'
artifact=$(get 'r.structuredContent.id')
tool get_service '{"service": "column-stats"}'
check 'JSON.stringify(r.structuredContent.request_schema).includes("artifact_name")'
tool submit_job '{"service": "column-stats", "input": {"artifact_name": "soil-temperature.csv"}, "wait_seconds": 30}'
check 'r.structuredContent.status === "succeeded" && r.structuredContent.result.columns.temperature_c.max === 15'
result=$(get 'r.structuredContent.result')
tool add_aspect "{\"entity\": \"$artifact\", \"schema\": \"urn:example:schema:column-stats.1\", \"content\": $result}"
tool list_aspects "{\"entity\": \"$artifact\"}"
check 'r.structuredContent.items.length === 1 && r.structuredContent.items[0].schema === "urn:example:schema:column-stats.1"'
tool search '{"query": ":- ivcap_aspect(Entity, \"urn:example:schema:column-stats.1\", Content)."}'
check "JSON.stringify(r.structuredContent.items).includes('$artifact')"
echo "inspector.sh: upload -> get_service -> submit_job -> add_aspect -> list_aspects -> search: all ok"
