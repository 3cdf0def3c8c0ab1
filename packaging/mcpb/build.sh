#!/usr/bin/env bash
# Builds the MCP Bundle (.mcpb) for Claude Desktop with the official @anthropic-ai/mcpb CLI
# (pinned in tools/clients): the release binary plus packaging/mcpb/manifest.json, validated
# (`mcpb validate`) and packed into target/mcpb/ivcap-mcp-<version>-<os>-<arch>.mcpb, with
# the registry's server.json for that file beside it (packaging/server.json plus the bundle's
# URL and SHA-256). The bundle is a build output, never committed.
#
#   packaging/mcpb/build.sh            # cargo build --release first
#   packaging/mcpb/build.sh --debug    # pack target/debug/ivcap-mcp (CI: no second build)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
source "$root/tools/clients/install.sh"
profile=release
if [ "${1:-}" = "--debug" ]; then
  profile=debug
  cargo build --quiet --bin ivcap-mcp --manifest-path "$root/Cargo.toml"
else
  cargo build --quiet --release --bin ivcap-mcp --manifest-path "$root/Cargo.toml"
fi
mcpb=(node "$root/tools/clients/node_modules/@anthropic-ai/mcpb/dist/cli/cli.js")
out="$root/target/mcpb"
stage="$out/stage"
rm -rf "$stage" && mkdir -p "$stage/server"

exe=ivcap-mcp
case "$(uname -s)" in
  Darwin) os=darwin ;;
  Linux) os=linux ;;
  MINGW*|MSYS*|CYGWIN*) os=win32; exe=ivcap-mcp.exe ;;
  *) echo "build.sh: unsupported OS $(uname -s)" >&2; exit 1 ;;
esac
arch=$(uname -m)
cp "$root/target/$profile/$exe" "$stage/server/$exe"
version=$(node -p 'require(process.argv[1]).version' "$root/packaging/mcpb/manifest.json")
# One binary inside, so the bundle claims only the platform it was built on.
node -e '
  const fs = require("fs");
  const m = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
  m.compatibility.platforms = [process.argv[2]];
  fs.writeFileSync(process.argv[3], JSON.stringify(m, null, 2) + "\n");
' "$root/packaging/mcpb/manifest.json" "$os" "$stage/manifest.json"
"${mcpb[@]}" validate "$stage/manifest.json"
bundle="$out/ivcap-mcp-$version-$os-$arch.mcpb"
"${mcpb[@]}" pack "$stage" "$bundle"
"${mcpb[@]}" info "$bundle"

sha=$(node -e 'const c = require("crypto").createHash("sha256"); c.update(require("fs").readFileSync(process.argv[1])); console.log(c.digest("hex"))' "$bundle")
node -e '
  const fs = require("fs");
  const [template, name, sha, target] = process.argv.slice(1);
  const s = JSON.parse(fs.readFileSync(template, "utf8"));
  const p = s.packages.find((p) => p.registryType === "mcpb");
  p.identifier = p.identifier.replace(/[^/]*\.mcpb$/, name);
  p.fileSha256 = sha;
  fs.writeFileSync(target, JSON.stringify(s, null, 2) + "\n");
' "$root/packaging/server.json" "$(basename "$bundle")" "$sha" "$out/server.json"
echo "build.sh: $bundle (sha256 $sha), registry entry $out/server.json"
