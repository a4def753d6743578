#!/usr/bin/env bash
# Prepares a machine to build, serve and test Transfer Lab, then generates the web assets.
#
# Safe to run again: every step checks first and skips work that is already done.
# Needs: rustup + cargo, node + npm; root (or sudo) only if Chromium must be installed.
# Installs: the wasm32 target, trunk 0.21, wasm-bindgen-cli (the version in Cargo.lock),
# wasm-opt from npm's binaryen (into .tools/), Debian's chromium, e2e/ npm packages,
# all crates (so Trunk's offline builds work), then public/generated/ via the CLI.
#
# Environment:
#   SKIP_ASSETS=1   skip the asset preparation step (tool set-up only)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Trunk finds wasm-bindgen and wasm-opt on PATH (it never downloads: Trunk.toml says
# offline), so our tool folders must come first.
export PATH="$ROOT/.tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"

BINARYEN_VERSION="132.0.0"
WASM_OPT_VERSION="132"
TRUNK_SERIES="0.21"

STEP_TIMES=()

say() { printf '==> %s\n' "$*"; }
fail() {
  printf '\nsetup.sh FAILED: %s\n' "$*" >&2
  if [ "${#STEP_TIMES[@]}" -gt 0 ]; then
    printf 'steps finished before the failure:\n' >&2
    printf '%s\n' "${STEP_TIMES[@]}" >&2
  fi
  exit 1
}

# Runs one named step and remembers how long it took.
step() {
  local name="$1"
  shift
  local start=$SECONDS
  say "$name"
  "$@"
  STEP_TIMES+=("$(printf '%5ss  %s' $((SECONDS - start)) "$name")")
}

need_command() {
  command -v "$1" >/dev/null 2>&1 || fail "'$1' is not installed. $2"
}

# Runs a command as root, through sudo when we are not root.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    fail "installing system packages needs root: run '$*' as root, then run this script again"
  fi
}

# `cargo install --locked` reproduces the crate's own tested dependency set. If a registry
# mirror lacks one of those exact versions, fall back to fresh resolution rather than stop.
# Runs from $HOME so that the repository's .cargo/config.toml does not apply to the tools.
cargo_install() {
  local crate="$1" version="$2"
  if ! (cd "$HOME" && cargo install "$crate" --version "$version" --locked); then
    say "cargo install --locked of $crate $version failed (a locked dependency may be missing" \
      "from the registry); retrying without --locked"
    (cd "$HOME" && cargo install "$crate" --version "$version") ||
      fail "could not install $crate $version with cargo install"
  fi
}

check_basics() {
  need_command cargo "Install Rust with rustup (https://rustup.rs) first."
  need_command rustup "Install Rust with rustup (https://rustup.rs): the wasm32 target comes from it."
  need_command node "Install Node.js 20 or newer first."
  need_command npm "Install npm (it comes with Node.js) first."
  local node_major
  node_major="$(node -p 'process.versions.node.split(".")[0]')"
  [ "$node_major" -ge 20 ] || fail "Node.js 20 or newer is needed, found $(node --version)."
  say "cargo $(cargo --version | cut -d' ' -f2), node $(node --version), npm $(npm --version)"
}

install_rust_parts() {
  if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "wasm32-unknown-unknown target already installed"
  else
    rustup target add wasm32-unknown-unknown
  fi
  # test.sh runs cargo fmt and cargo clippy; minimal rustup profiles lack them.
  if cargo fmt --version >/dev/null 2>&1 && cargo clippy --version >/dev/null 2>&1; then
    say "rustfmt and clippy already installed"
  else
    rustup component add rustfmt clippy
  fi
}

install_trunk() {
  local found=""
  if command -v trunk >/dev/null 2>&1; then
    found="$(trunk --version 2>/dev/null || true)"
  fi
  if [[ "$found" =~ ^trunk\ ${TRUNK_SERIES//./\\.}\. ]]; then
    say "$found already installed"
  else
    say "installing trunk ~$TRUNK_SERIES (found: ${found:-none}); this compiles for several minutes"
    cargo_install trunk "~$TRUNK_SERIES"
    trunk --version
  fi
}

# The wasm-bindgen CLI must match the wasm-bindgen crate in Cargo.lock exactly, or the
# generated JS glue does not fit the compiled WASM.
locked_wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock
}

install_wasm_bindgen() {
  if [ ! -f Cargo.lock ]; then
    say "no Cargo.lock yet: generating it"
    cargo generate-lockfile
  fi
  local version
  version="$(locked_wasm_bindgen_version)"
  if [ -z "$version" ]; then
    say "Cargo.lock has no wasm-bindgen crate yet: skipping wasm-bindgen-cli"
    return
  fi
  local trunk_version
  trunk_version="$(sed -n 's/^wasm_bindgen *= *"\(.*\)".*/\1/p' Trunk.toml)"
  if [ "$trunk_version" != "$version" ]; then
    fail "Trunk.toml asks for wasm_bindgen = \"$trunk_version\" but Cargo.lock has" \
      "wasm-bindgen $version. Set wasm_bindgen = \"$version\" under [tools] in Trunk.toml."
  fi
  local found=""
  if command -v wasm-bindgen >/dev/null 2>&1; then
    found="$(wasm-bindgen --version 2>/dev/null || true)"
  fi
  if [ "$found" = "wasm-bindgen $version" ]; then
    say "$found already installed"
  else
    say "installing wasm-bindgen-cli $version (found: ${found:-none})"
    cargo_install wasm-bindgen-cli "=$version"
    wasm-bindgen --version
  fi
}

# Debian's binaryen (108) miscompiles burn's WASM; npm's build of binaryen is current.
install_wasm_opt() {
  local found=""
  if [ -x .tools/node_modules/.bin/wasm-opt ]; then
    found="$(.tools/node_modules/.bin/wasm-opt --version 2>/dev/null || true)"
  fi
  if [[ "$found" == "wasm-opt version $WASM_OPT_VERSION "* ]]; then
    say "$found already installed in .tools/"
  else
    say "installing binaryen $BINARYEN_VERSION from npm into .tools/ (found: ${found:-none})"
    npm install --prefix .tools --no-audit --no-fund "binaryen@$BINARYEN_VERSION"
    found="$(.tools/node_modules/.bin/wasm-opt --version)"
    [[ "$found" == "wasm-opt version $WASM_OPT_VERSION "* ]] ||
      fail "expected wasm-opt version $WASM_OPT_VERSION after installing, got: $found"
  fi
  # Trunk runs the first wasm-opt on PATH; make sure that is ours and not Debian's.
  [ "$(command -v wasm-opt)" = "$ROOT/.tools/node_modules/.bin/wasm-opt" ] ||
    fail "wasm-opt on PATH is $(command -v wasm-opt), not .tools/node_modules/.bin/wasm-opt"
}

install_chromium() {
  if [ -x /usr/bin/chromium ]; then
    say "$(/usr/bin/chromium --version 2>/dev/null) already installed"
    return
  fi
  command -v apt-get >/dev/null 2>&1 ||
    fail "/usr/bin/chromium is missing and there is no apt-get: install Chromium yourself"
  say "installing Debian's chromium with apt-get"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
  [ -x /usr/bin/chromium ] || fail "apt-get finished but /usr/bin/chromium is still missing"
}

# `npm ci` wipes node_modules every time, so run it only when the lock file changed.
install_e2e_packages() {
  local stamp=e2e/node_modules/.setup-stamp
  local want
  want="$(sha256sum e2e/package-lock.json | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "e2e/ npm packages already installed"
    return
  fi
  # playwright-core never downloads a browser by itself; the tests use Debian's chromium.
  (cd e2e && npm ci --no-audit --no-fund)
  echo "$want" >"$stamp"
}

# Trunk.toml sets offline = true, which makes Trunk call `cargo build --offline`; so every
# crate (for all targets, wasm32 included) must already be downloaded.
fetch_crates() {
  cargo fetch || fail "cargo fetch failed: the crates cannot be downloaded (is crates.io reachable?)"
}

prepare_assets() {
  if [ "${SKIP_ASSETS:-0}" = "1" ]; then
    say "SKIP_ASSETS=1: not preparing assets"
    return
  fi
  # The CLI skips work that is already up to date, and reads ../shared/assets when present.
  cargo run --release -p transfer-lab-cli --bin transfer-lab -- prepare --full ||
    fail "asset preparation failed (see the messages above)"
}

print_summary() {
  say "setup done; time per step:"
  printf '%s\n' "${STEP_TIMES[@]}"
}

main() {
  step "check basic tools" check_basics
  step "Rust wasm32 target, rustfmt, clippy" install_rust_parts
  step "trunk $TRUNK_SERIES" install_trunk
  step "wasm-bindgen-cli" install_wasm_bindgen
  step "wasm-opt (binaryen $BINARYEN_VERSION)" install_wasm_opt
  step "Chromium" install_chromium
  step "e2e npm packages" install_e2e_packages
  step "fetch crates" fetch_crates
  step "prepare assets" prepare_assets
  print_summary
}

main "$@"
