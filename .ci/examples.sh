#!/usr/bin/env bash
# The examples as a user runs them, against this build (IVCAP_MCP=target/debug/ivcap-mcp):
#   - examples/inspector.sh: the official MCP Inspector CLI, local-mode workflow;
#   - examples/python_agent.py: the official Python `mcp` client, in a venv of its own
#     (target/python-venv, pinned by examples/requirements.txt);
#   - packaging/mcpb/build.sh --debug: `mcpb validate` and `mcpb pack` of the bundle.
# Each fails on any error. Node comes from tools/clients (npm), Python packages from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

cargo build --quiet --bin ivcap-mcp
export IVCAP_MCP="$root/target/debug/ivcap-mcp"

echo "== examples/inspector.sh"
bash examples/inspector.sh

echo "== examples/python_agent.py"
command -v python3 >/dev/null || { echo "examples: python3 is required for examples/python_agent.py" >&2; exit 1; }
venv="$root/target/python-venv"
if [ ! -x "$venv/bin/python" ] || [ examples/requirements.txt -nt "$venv/.installed" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r examples/requirements.txt
  touch "$venv/.installed"
fi
"$venv/bin/python" examples/python_agent.py

echo "== packaging/mcpb/build.sh --debug"
bash packaging/mcpb/build.sh --debug
