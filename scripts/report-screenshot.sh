#!/usr/bin/env bash
# Render a fleetsim report.html to a PNG in headless Chromium, as a reader's
# browser would show it (the page has no script: what is drawn is the HTML,
# the CSS and the inline SVG charts).
#
#   scripts/report-screenshot.sh REPORT.html OUT.png [WIDTH,HEIGHT]
#
# WIDTH,HEIGHT is the window, and so the picture, in CSS pixels (default
# 1200,3000); only what fits in it is drawn.
#
# It installs chromium from Debian when it is missing (apt-get, through sudo
# when not root), as scripts/loadtest.sh does for nginx; when that is
# impossible it says why and exits 3, so a caller can tell "no browser" from
# "the browser failed" (exit 1). internal/fleetrun's TestReportScreenshot
# runs it (make report-check).
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
	echo "usage: $0 REPORT.html OUT.png [WIDTH,HEIGHT]" >&2
	exit 2
fi
in=$1
out=$2
size=${3:-1200,3000}
if ! [[ $size =~ ^[0-9]+,[0-9]+$ ]]; then
	echo "window size $size: want WIDTH,HEIGHT in pixels, like 1200,3000" >&2
	exit 2
fi
if [ ! -f "$in" ]; then
	echo "$in: no such file" >&2
	exit 2
fi

find_chromium() {
	command -v chromium || command -v chromium-browser || true
}

CHROMIUM=$(find_chromium)
if [ -z "$CHROMIUM" ]; then
	echo "== chromium is missing: installing it from Debian" >&2
	sudo=""
	if [ "$(id -u)" != 0 ]; then
		if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
			sudo="sudo -n"
		else
			echo "chromium is not installed, and installing it needs root (no password-less sudo)" >&2
			exit 3
		fi
	fi
	if ! command -v apt-get >/dev/null; then
		echo "chromium is not installed and there is no apt-get to install it" >&2
		exit 3
	fi
	log=$(mktemp "${TMPDIR:-/tmp}/chromium-apt.XXXXXX")
	if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium; } >"$log" 2>&1; then
		echo "apt-get install chromium failed: $(tail -n 1 "$log")" >&2
		rm -f "$log"
		exit 3
	fi
	rm -f "$log"
	CHROMIUM=$(find_chromium)
	if [ -z "$CHROMIUM" ]; then
		echo "apt-get installed chromium, but there is no chromium command" >&2
		exit 3
	fi
fi

abs() { (cd "$(dirname "$1")" && printf '%s/%s\n' "$(pwd)" "$(basename "$1")"); }
in=$(abs "$in")
out_dir=$(dirname "$out")
mkdir -p "$out_dir"
out=$(abs "$out")

# A profile of its own, so that no state from another run (or the user's
# browser) changes the picture; removed on exit.
profile=$(mktemp -d "${TMPDIR:-/tmp}/fleetsim-chromium.XXXXXX")
trap 'rm -rf "$profile"' EXIT
rm -f "$out"
# --no-sandbox: Chromium refuses to run as root with its sandbox, and CI
# runs as root. --force-device-scale-factor=1: one CSS pixel, one PNG pixel.
"$CHROMIUM" --headless --disable-gpu --no-sandbox --hide-scrollbars \
	--no-first-run --no-default-browser-check --disable-extensions \
	--disable-dev-shm-usage --force-device-scale-factor=1 \
	--user-data-dir="$profile" \
	--window-size="$size" --screenshot="$out" "file://$in" >"$profile/chromium.log" 2>&1 || {
	echo "chromium failed:" >&2
	tail -n 20 "$profile/chromium.log" >&2
	exit 1
}
if [ ! -s "$out" ]; then
	echo "chromium wrote no screenshot to $out:" >&2
	tail -n 20 "$profile/chromium.log" >&2
	exit 1
fi
echo "$out"
