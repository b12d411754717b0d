#!/usr/bin/env bash
# Debian packages that some tests start (needs root; a no-op when they are there):
#   chromium   - the UI test drives Debian's headless Chromium through playwright
#   postgresql - the team-deployment test starts a real PostgreSQL server for the instance
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: need ${need[*]} (apt-get install as root); their tests will be skipped" >&2
  exit 0
fi
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
