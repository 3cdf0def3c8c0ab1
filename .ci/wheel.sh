#!/usr/bin/env bash
# The Python package as a user gets it (pyproject.toml, docs/install.md):
#   1. maturin makes the sdist, and the wheel is built from that sdist with cargo, as
#      `pip install` of an sdist does: so the sdist is shown to build from source, and this
#      is CI's one release build (CARGO_TARGET_DIR=target: dependencies compiled by earlier
#      runs are reused);
#   2. pip installs the wheel into a fresh venv, and the official Python `mcp` client
#      (examples/python_agent.py: tools/list, then a local-mode workflow) runs the `ivcap-mcp`
#      the install put on the venv's PATH;
#   3. the same workflow through `uvx --from <wheel> ivcap-mcp`, and through the client
#      examples' `uvx ivcap-mcp` with the package found among the built wheels only.
# Prints the wheel's size and how long installing it takes. maturin and uv come from PyPI
# (pinned in .ci/wheel-requirements.txt), the `mcp` client too (examples/requirements.txt):
# when PyPI cannot be reached this fails; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
command -v python3 >/dev/null || { echo "wheel: python3 is required" >&2; exit 1; }

# Seconds since $1 (an $EPOCHREALTIME), to a tenth.
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

backend=$(grep -o '"maturin==[^"]*"' pyproject.toml | tr -d '"')
grep -qx "$backend" .ci/wheel-requirements.txt || {
  echo "wheel: pyproject.toml builds with $backend; pin the same in .ci/wheel-requirements.txt" >&2
  exit 1
}
tools=$root/target/wheel-tools
if [ ! -x "$tools/bin/maturin" ] || [ .ci/wheel-requirements.txt -nt "$tools/.installed" ]; then
  rm -rf "$tools"
  python3 -m venv "$tools"
  "$tools/bin/pip" install --quiet --disable-pip-version-check -r .ci/wheel-requirements.txt || {
    echo "wheel: FAILED to install maturin and uv from PyPI (.ci/wheel-requirements.txt)" >&2
    exit 1
  }
  touch "$tools/.installed"
fi

echo "== sdist, and the wheel built from it"
start=$EPOCHREALTIME
out=$root/target/wheels
rm -rf "$out" && mkdir -p "$out"
"$tools/bin/maturin" sdist --out "$out"
sdist=$(echo "$out"/ivcap_mcp-*.tar.gz)
build=$root/target/wheel-build
rm -rf "$build" && mkdir -p "$build"
# -m: the files' times are now, not the sdist's fixed 2006 ones, which cargo would take as
# older than the last run's build of the crate in target/ and reuse that. So the crate is
# built from these sources every run; its dependencies come from target/.
tar -xzmf "$sdist" -C "$build"
# pip builds through pyproject.toml's backend: the pinned maturin of the tools venv, whose
# Python hook runs the `maturin` on PATH. `--compatibility pypi` checks the binary against
# the manylinux rules and tags the wheel as a release would upload it (a plain pip build is
# tagged `linux_x86_64`, which PyPI refuses).
PATH="$tools/bin:$PATH" CARGO_TARGET_DIR=$root/target MATURIN_PEP517_ARGS="--compatibility pypi" \
  "$tools/bin/pip" wheel --no-deps --no-build-isolation \
  --disable-pip-version-check --quiet --wheel-dir "$out" "$(echo "$build"/ivcap_mcp-*)"
wheel=$(echo "$out"/ivcap_mcp-*.whl)
[ -f "$wheel" ] || { echo "wheel: no wheel in $out" >&2; exit 1; }
build_time=$(since "$start")
size=$(stat -c %s "$wheel")
echo "wheel: $(basename "$wheel"), $size bytes, sdist $(stat -c %s "$sdist") bytes, built in ${build_time}s"

echo "== pip install of the wheel into a fresh venv"
venv=$root/target/wheel-venv
rm -rf "$venv"
python3 -m venv "$venv"
start=$EPOCHREALTIME
"$venv/bin/pip" install --quiet --disable-pip-version-check "$wheel"
pip_time=$(since "$start")
installed=$(PATH="$venv/bin:$PATH" command -v ivcap-mcp)
[ "$installed" = "$venv/bin/ivcap-mcp" ] || { echo "wheel: ivcap-mcp on PATH is $installed, not the venv's" >&2; exit 1; }
# The package's version is the crate's (pyproject.toml takes it from Cargo.toml).
version=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("ivcap-mcp"))')
[ "$("$installed" --version)" = "ivcap-mcp $version" ] || {
  echo "wheel: package version $version, but $("$installed" --version)" >&2
  exit 1
}
"$venv/bin/pip" install --quiet --disable-pip-version-check -r examples/requirements.txt
# IVCAP_MCP unset: the client starts `ivcap-mcp` from PATH, as the client examples do.
env -u IVCAP_MCP PATH="$venv/bin:$PATH" "$venv/bin/python" examples/python_agent.py

echo "== uvx"
# A cache of this run's own, so the first run is timed as a user's first `uvx` of it.
uvx=("$tools/bin/uvx" --cache-dir "$root/target/uv-cache")
rm -rf "$root/target/uv-cache"
start=$EPOCHREALTIME
"${uvx[@]}" --from "$wheel" ivcap-mcp --version
uvx_cold=$(since "$start")
start=$EPOCHREALTIME
"${uvx[@]}" --from "$wheel" ivcap-mcp --version
uvx_warm=$(since "$start")
IVCAP_MCP="${uvx[*]} --from $wheel ivcap-mcp" "$venv/bin/python" examples/python_agent.py
# The examples' form, `uvx ivcap-mcp`, with the built wheels as the only package index.
IVCAP_MCP="${uvx[*]} --no-index --find-links $out ivcap-mcp" "$venv/bin/python" examples/python_agent.py

echo "wheel: size $size bytes; built (sdist → wheel) in ${build_time}s; pip install ${pip_time}s;" \
  "uvx --from wheel first run ${uvx_cold}s, then ${uvx_warm}s"
