#!/usr/bin/env bash
# Runs every test of viewcast, installing what the tests need when it is missing.
# Usage: ./tests/run-all.sh   (from the repository root; root or sudo for installs)
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the test suites talk to (real servers, not stubs), installed when missing:
# influxdb (1.6: influxd for tests/influxdb.rs) and prometheus (the server scrapes the daemon in
# tests/daemon.rs; promtool unit-tests the alerting rules) and chromium (loads the page at /).
packages=(influxdb prometheus chromium)
need=()
for pkg in "${packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}"
fi

(cd deploy/prometheus && promtool check rules alerts.yml && promtool test rules alerts_test.yml)
cargo test --locked --all-targets
