#!/usr/bin/env bash
# Sets up the machine (scripts/setup.sh), builds the app for release with Trunk, and
# serves dist/ on http://127.0.0.1:8080 (PORT=... to change it) until Ctrl+C.
#
# It serves the built files with e2e/serve.mjs, the same server the browser tests use,
# so what you see is what is tested. For live rebuilds while editing, use
# `trunk serve --release` instead (after running this script once).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export PATH="$ROOT/.tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"
PORT="${PORT:-8080}"

bash scripts/setup.sh
echo "==> trunk build --release"
trunk build --release
echo "==> serving dist/ on http://127.0.0.1:$PORT/"
exec node e2e/serve.mjs --dir dist --host 127.0.0.1 --port "$PORT"
