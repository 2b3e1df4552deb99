#!/bin/sh
# Runs the TUF conformance suite (theupdateframework/tuf-conformance) against
# fleetsim's device TUF client. The suite and its Python dependencies are not
# part of fleetsim: obtain them yourself (docs/tuf-client.md says how) and
# pass the suite's directory.
#
#   scripts/tuf-conformance.sh SUITE_DIR [pytest arguments...]
#
# PYTHONPATH must reach python-tuf (tuf.api), securesystemslib and pytest;
# the faketime command must be on PATH.
set -eu
if [ $# -lt 1 ] || [ ! -d "$1/tuf_conformance" ]; then
	echo "usage: $0 SUITE_DIR [pytest arguments...]" >&2
	exit 2
fi
suite=$(cd "$1" && pwd)
shift
here=$(cd "$(dirname "$0")/.." && pwd)
(cd "$here" && GOTOOLCHAIN=local go build -o bin/fleetsim ./cmd/fleetsim)
cd "$suite"
exec python3 -m pytest tuf_conformance --entrypoint "$here/scripts/tuf-conformance-client" -p no:cacheprovider "$@"
