#!/usr/bin/env bash
# Open the dashboard full screen on the lab monitor (a Linux desktop session).
# Add it to the session's autostart. URL: first argument, default this computer.
set -euo pipefail
URL="${1:-http://127.0.0.1:8050/}"
for browser in chromium chromium-browser google-chrome firefox; do
    if command -v "$browser" >/dev/null 2>&1; then
        case "$browser" in
        firefox) exec "$browser" --kiosk "$URL" ;;
        *) exec "$browser" --kiosk --noerrdialogs --disable-session-crashed-bubble --no-first-run "$URL" ;;
        esac
    fi
done
echo "no chromium, chrome or firefox found" >&2
exit 1
