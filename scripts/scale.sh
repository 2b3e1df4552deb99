#!/usr/bin/env bash
# The scale runs: the built-in "scale" scenario at several fleet sizes, each
# in its own process, with its wall time, peak RSS, RSS per device, device
# steps per second and the ratio of simulated to wall time.
#
#   scripts/scale.sh                 (or: make scale)
#   SCALE_COUNTS="10000 100000" scripts/scale.sh
#
# Environment:
#   SCALE_COUNTS     fleet sizes (default "10000 100000 1000000")
#   SCALE_SCENARIO   scenario name or file (default scale)
#   SCALE_FLEETSIM   a fleetsim binary to use instead of building bin/fleetsim
set -euo pipefail

COUNTS=${SCALE_COUNTS:-10000 100000 1000000}
SCENARIO=${SCALE_SCENARIO:-scale}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
if [ -n "${SCALE_FLEETSIM:-}" ]; then
	FS=$SCALE_FLEETSIM
else
	echo "== building bin/fleetsim"
	go build -o bin/fleetsim ./cmd/fleetsim
	FS=$here/bin/fleetsim
fi
if [ ! -x /usr/bin/time ]; then
	echo "scripts/scale.sh needs GNU time (/usr/bin/time) for the peak RSS: apt-get install time" >&2
	exit 1
fi
out=$(mktemp -d "${TMPDIR:-/tmp}/fleetsim-scale.XXXXXX")
trap 'rm -rf "$out"' EXIT

# field FILE KEY: a top-level number from report.json.
field() { sed -n "s/^  \"$2\": \([0-9.]*\),*$/\1/p" "$1" | head -n 1; }

rows=()
for n in $COUNTS; do
	case $n in '' | *[!0-9]*)
		echo "SCALE_COUNTS: $n is not a fleet size" >&2
		exit 2
		;;
	esac
	echo "== $SCENARIO with $n devices"
	start=$(date +%s.%N)
	set +e
	/usr/bin/time -f '%M' -o "$out/rss.$n" "$FS" run "$SCENARIO" --devices "$n" --quiet --out "$out/$n" >"$out/summary.$n" 2>&1
	rc=$?
	set -e
	end=$(date +%s.%N)
	cat "$out/summary.$n"
	if [ ! -s "$out/$n/report.json" ]; then
		rows+=("| $n | failed (exit $rc) | | | | | |")
		continue
	fi
	rows+=("$(awk -v n="$n" -v a="$start" -v b="$end" -v r="$(tail -n 1 "$out/rss.$n")" \
		-v s="$(field "$out/$n/report.json" simulated_s)" -v st="$(field "$out/$n/report.json" device_steps)" -v rc="$rc" 'BEGIN {
		w = b - a
		printf "| %d | %.1f s | %.0f MiB | %.0f B | %.0f | %.0fx | %d |", n, w, r / 1024, r * 1024 / n, st / w, s / w, rc }')")
done
echo
echo "| devices | wall time | peak RSS | RSS per device | device steps/s | simulated/wall | exit |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
