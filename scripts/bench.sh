#!/usr/bin/env bash
# Lesson 02 benchmark: natively on the CPU (flex) backend, then in headless Chromium's tab on
# the CPU backend and on WebGPU. Prints figures; run after scripts/setup.sh and a trunk build
# (scripts/serve.sh or scripts/test.sh leave one in dist/).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$ROOT/.tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"

echo "==> natively (cargo bench)"
cargo bench -p transfer-lab-model --bench lesson02
if [ ! -f dist/index.html ]; then
  echo "==> building the web app (trunk build --release)"
  trunk build --release
fi
echo "==> in the browser tab (headless Chromium)"
node e2e/bench.mjs
