#!/usr/bin/env bash
# Installs what the browser tests need, idempotently: Debian's Chromium and the pinned
# Python packages (Playwright drives the system Chromium; `playwright install` is not used).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [ -x /usr/bin/chromium ]; then
  echo "setup: /usr/bin/chromium present ($(/usr/bin/chromium --version 2>/dev/null || echo unknown version))"
else
  echo "setup: installing chromium with apt-get"
  sudo_cmd=""
  if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update
  $sudo_cmd apt-get install -y chromium
fi

if python3 -c "import playwright.sync_api, axe_playwright_python" 2>/dev/null; then
  echo "setup: playwright and axe-playwright-python importable"
else
  echo "setup: pip install -r $here/requirements.txt"
  python3 -m pip install -r "$here/requirements.txt"
fi
echo "setup: done"
