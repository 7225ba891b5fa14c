#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need (a redis-server
# from Debian's packages, for the shared-state tests; the official OpenAI and Anthropic Python
# SDKs from PyPI, which tests/it/serve/sdk.rs runs against `serve`), then checks formatting
# and runs every test. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v redis-server >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq && $sudo apt-get install -y -qq redis-server
fi
if ! python3 -c 'import openai, anthropic' >/dev/null 2>&1; then
  python3 -m pip install -q --disable-pip-version-check openai anthropic ||
    python3 -m pip install -q --disable-pip-version-check --user openai anthropic
fi
cargo fmt --check
cargo test --locked
# The minute of serve under load, left out of a plain `cargo test` (#[ignore]).
cargo test --locked --test it serve::load -- --ignored
