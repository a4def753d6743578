#!/usr/bin/env bash
# Benchmarks of lessons 01-04: natively on the CPU (flex) backend (cargo bench), then lessons
# 01 to 04 in headless Chromium's tab on the CPU backend and on WebGPU. Prints figures; run after scripts/setup.sh and a trunk build
# (scripts/serve.sh or scripts/test.sh leave one in dist/).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$ROOT/.tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"

echo "==> natively (cargo bench)"
cargo bench -p transfer-lab-model --bench lesson01
cargo bench -p transfer-lab-model --bench lesson02
cargo bench -p transfer-lab-model --bench lesson03
cargo bench -p transfer-lab-model --bench zoo
if [ ! -f dist/index.html ]; then
  echo "==> building the web app (trunk build --release)"
  trunk build --release
fi
echo "==> in the browser tab (headless Chromium)"
node e2e/bench-lesson01.mjs
node e2e/bench.mjs
node e2e/bench-lesson03.mjs
node e2e/bench-lesson04.mjs
