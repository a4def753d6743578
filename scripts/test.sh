#!/usr/bin/env bash
# Sets up the machine (scripts/setup.sh), then runs every check and test:
# formatting, clippy (native and wasm32), the Rust tests, the release WASM build, and the
# browser tests in e2e/. Runs them all even after a failure, so one run shows every
# problem, and exits non-zero if any failed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export PATH="$ROOT/.tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"
# Plain, uncoloured cargo output reads better in CI logs.
if [ "${CI:-}" = "true" ]; then
  export CARGO_TERM_COLOR=never
fi

FAILED=()
RESULTS=()

say() { printf '\n==> %s\n' "$*"; }

# Runs one check, records pass/fail and its time, and never stops the script.
check() {
  local name="$1"
  shift
  local start=$SECONDS status=0
  say "$name"
  "$@" || status=$?
  local took=$((SECONDS - start))
  if [ "$status" -eq 0 ]; then
    RESULTS+=("$(printf 'ok    %5ss  %s' "$took" "$name")")
  else
    RESULTS+=("$(printf 'FAIL  %5ss  %s (exit %s)' "$took" "$name" "$status")")
    FAILED+=("$name")
  fi
  return 0
}

wasm_clippy() {
  cargo clippy -p transfer-lab-app --target wasm32-unknown-unknown -- -D warnings
}

# --release: the numeric tests are heavy, and the release build of the dependencies is
# already there from the asset preparation (setup.sh), so this avoids a second full build.
rust_tests() {
  cargo test --workspace --release
}

trunk_build() {
  if [ ! -f app/index.html ]; then
    echo "app/index.html does not exist: nothing for trunk to build" >&2
    return 1
  fi
  trunk build --release
}

e2e_tests() {
  if [ ! -f dist/index.html ]; then
    echo "dist/index.html is missing (trunk build failed?): the browser tests need it" >&2
    return 1
  fi
  # One test file at a time: each starts Chromium, and two cores are not enough for more.
  (cd e2e && node --test --test-concurrency=1)
}

main() {
  local start=$SECONDS
  say "set-up (scripts/setup.sh)"
  bash scripts/setup.sh || {
    echo "set-up failed, so no tests were run" >&2
    exit 1
  }

  check "cargo fmt --check" cargo fmt --all -- --check
  check "cargo clippy (native, all targets)" \
    cargo clippy --workspace --all-targets -- -D warnings
  if [ -d app ]; then
    check "cargo clippy (app, wasm32)" wasm_clippy
  fi
  check "cargo test (release)" rust_tests
  # An old dist/ must not stand in for a failed build in the browser tests.
  rm -rf dist
  check "trunk build --release" trunk_build
  check "browser tests (e2e/)" e2e_tests

  say "summary ($((SECONDS - start)) s in all)"
  printf '%s\n' "${RESULTS[@]}"
  if [ "${#FAILED[@]}" -gt 0 ]; then
    printf '\n%s check(s) failed:\n' "${#FAILED[@]}" >&2
    printf '  - %s\n' "${FAILED[@]}" >&2
    exit 1
  fi
  echo "all checks passed"
}

main "$@"
