#!/usr/bin/env bash
# Runs every test of viewcast, installing what the tests need when it is missing.
# Usage: ./tests/run-all.sh   (from the repository root; root or sudo for installs)
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the test suites talk to (real servers, not stubs), installed when missing:
# influxdb (1.6: influxd for tests/influxdb.rs) and prometheus (the server scrapes the daemon in
# tests/daemon.rs; promtool unit-tests the alerting rules), prometheus-alertmanager (amtool checks
# the shipped routing), chromium (loads the page at /) and systemd (systemd-analyze checks the unit).
packages=(influxdb prometheus prometheus-alertmanager chromium systemd)
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
# The shipped Alertmanager routing loads, and alerts of both severities reach the webhook.
(cd deploy/alertmanager && amtool check-config alertmanager.yml >/dev/null &&
  for severity in warning critical; do
    amtool config routes test --config.file=alertmanager.yml --verify.receivers=viewcast-webhook \
      alertname=ViewcastChannelAnomaly channel=news "severity=$severity" >/dev/null 2>&1 ||
      { echo "alertmanager.yml: a $severity alert does not reach viewcast-webhook" >&2; exit 1; }
  done)
cargo test --locked --all-targets

# The shipped systemd unit, with ExecStart pointed at the binary just built: systemd-analyze
# verify fails on what systemd cannot run and warns (exit 0) on keys it does not know, so any
# output at all fails the check.
unit_dir=$(mktemp -d)
sed "s#/usr/local/bin/viewcast#$PWD/target/debug/viewcast#" deploy/systemd/viewcast.service >"$unit_dir/viewcast.service"
unit_out=$(systemd-analyze verify "$unit_dir/viewcast.service" 2>&1) && [ -z "$unit_out" ] ||
  { echo "deploy/systemd/viewcast.service: ${unit_out:-systemd-analyze verify failed}" >&2; rm -rf "$unit_dir"; exit 1; }
rm -rf "$unit_dir"
