#!/usr/bin/env bash
# Installs the pinned Node 22, MCP Inspector and MCP Bundle CLI from package-lock.json into
# tools/clients/node_modules (again only when the lock file changed), for
# examples/inspector.sh and packaging/mcpb/build.sh. Source it: it puts that Node on PATH.
clients="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ ! -f "$clients/node_modules/.package-lock.json" ] || [ "$clients/package-lock.json" -nt "$clients/node_modules/.package-lock.json" ]; then
  (cd "$clients" && npm ci --no-audit --no-fund --loglevel=error) || return 1
fi
export PATH="$clients/node_modules/node/bin:$PATH"
case "$(node --version)" in
  v22.*) ;;
  *) echo "tools/clients: expected Node 22, got $(node --version)" >&2; return 1 ;;
esac
