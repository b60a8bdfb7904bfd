#!/usr/bin/env bash
# The test command of the README: fetch the pinned assets the tests need, then run every test
# of the workspace (release-optimised test profile, see Cargo.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch_assets.sh
cargo test --workspace --release "$@"
