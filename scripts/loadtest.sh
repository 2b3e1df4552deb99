#!/usr/bin/env bash
# Load test of the fleetsim device gateway on loopback, with nginx serving the
# same bytes over TLS as the baseline (issue 4 §4). Both servers are driven by
# the same load generator (fleetsim loadgen: wrk cannot present client
# certificates) on the same machine, so the gateway/nginx ratio is fair even
# though client and server share the cores.
#
#   scripts/loadtest.sh            (or: make loadtest)
#
# Environment:
#   LOADTEST_DURATION     measured window per run (default 15s)
#   LOADTEST_WARMUP       warm-up per run, not counted (default 2s)
#   LOADTEST_CONNECTIONS  concurrent devices per run (default 32)
#   LOADTEST_ROUNDS       runs per measurement, alternating gateway and nginx;
#                         the table shows the median by req/s (default 1)
#   LOADTEST_KEEP=1       keep the temporary directory (logs, JSON results)
#   LOADTEST_FLEETSIM     a fleetsim binary to use instead of building bin/fleetsim
#
# It installs nginx-light from Debian when nginx is missing (apt-get, through
# sudo when not root); when that is impossible it says why and measures the
# gateway alone. Everything it starts is stopped on exit.
set -euo pipefail

DURATION=${LOADTEST_DURATION:-15s}
WARMUP=${LOADTEST_WARMUP:-2s}
CONNS=${LOADTEST_CONNECTIONS:-32}
ROUNDS=${LOADTEST_ROUNDS:-1}
GW_PORT=18443
ADMIN_PORT=18444
NGINX_PORT=18445
TAG=devel
HWID=loadtest-board

case $ROUNDS in
'' | *[!0-9]* | 0)
	echo "LOADTEST_ROUNDS=$ROUNDS: want a positive whole number" >&2
	exit 2
	;;
esac

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
if [ -n "${LOADTEST_FLEETSIM:-}" ]; then
	FS=$(cd "$(dirname "$LOADTEST_FLEETSIM")" && pwd)/$(basename "$LOADTEST_FLEETSIM")
else
	echo "== building bin/fleetsim"
	go build -o bin/fleetsim ./cmd/fleetsim
	FS=$here/bin/fleetsim
fi

D=$(mktemp -d "${TMPDIR:-/tmp}/fleetsim-loadtest.XXXXXX")
# nginx's workers may run as another user: they must reach the served files.
chmod 755 "$D"
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	if [ "${LOADTEST_KEEP:-}" = 1 ]; then
		echo "kept $D"
	else
		rm -rf "$D"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_port PORT NAME LOG PID: until PORT accepts TCP connections, or fail
# with the server's log when it died or took longer than 20 s.
wait_port() {
	local i
	for i in $(seq 1 200); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		if ! kill -0 "$4" 2>/dev/null; then
			echo "$2 exited; its log:" >&2
			tail -n 20 "$3" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "$2 did not listen on port $1 within 20 s; its log:" >&2
	tail -n 20 "$3" >&2
	return 1
}

# Another server on our ports would be measured in our servers' place.
for port in $GW_PORT $ADMIN_PORT $NGINX_PORT; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		echo "port 127.0.0.1:$port is already in use: stop what listens there first" >&2
		exit 1
	fi
done

# ---- nginx (the baseline): install it when missing -------------------------
have_nginx=1
nginx_why=""
NGINX=$(command -v nginx || true)
[ -z "$NGINX" ] && [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx
if [ -z "$NGINX" ]; then
	echo "== nginx is missing: installing nginx-light from Debian"
	sudo=""
	if [ "$(id -u)" != 0 ]; then
		if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
			sudo="sudo -n"
		else
			have_nginx=0
			nginx_why="nginx is not installed, and installing it needs root (no password-less sudo)"
		fi
	fi
	if [ "$have_nginx" = 1 ]; then
		if ! command -v apt-get >/dev/null; then
			have_nginx=0
			nginx_why="nginx is not installed and there is no apt-get to install it"
		elif ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nginx-light; } >"$D/apt.log" 2>&1; then
			have_nginx=0
			nginx_why="apt-get install nginx-light failed: $(tail -n 1 "$D/apt.log")"
		fi
		NGINX=$(command -v nginx || echo /usr/sbin/nginx)
	fi
fi
if [ "$have_nginx" = 1 ]; then
	nginx_version=$("$NGINX" -v 2>&1 | sed 's/.*nginx\///')
else
	echo "== no nginx baseline: $nginx_why" >&2
fi

# ---- PKI, image ----------------------------------------------------------
echo "== PKI and a 1 MiB signed image in $D"
"$FS" pki init --dir "$D/pki" >"$D/pki.log" 2>&1 || { cat "$D/pki.log" >&2; exit 1; }
"$FS" pki issue --pki "$D/pki" --count 64 --out "$D/pki/devices" >>"$D/pki.log" 2>&1 || { cat "$D/pki.log" >&2; exit 1; }
"$FS" image keygen -k "$D/image.key" -t ecdsa-p256
"$FS" image getpub -k "$D/image.key" -o "$D/image.pub"
# aktualizr-nano caps firmware at 1 MiB (foundries.md §1.7): a payload that
# leaves room for the 512-byte header and the TLVs keeps the image under it.
head -c $((1048576 - 1024)) /dev/urandom >"$D/payload.bin"
"$FS" image sign -k "$D/image.key" -v 1.0.0+2 -H 0x200 --pad-header -S 0x200000 --align 8 \
	"$D/payload.bin" "$D/image.bin"
size=$(stat -c %s "$D/image.bin")
sha=$(sha256sum "$D/image.bin" | cut -c1-64)
FWPATH="/mcu/files/${sha:0:2}/${sha:2}.bin"

# ---- the gateway -----------------------------------------------------------
have_gw=1
gw_why=""
if ! "$FS" gateway serve --help >/dev/null 2>&1; then
	have_gw=0
	gw_why="this fleetsim has no 'gateway serve'"
	echo "== no gateway: $gw_why" >&2
fi
if [ "$have_gw" = 1 ]; then
	echo "== starting the gateway on 127.0.0.1:$GW_PORT (TCP+TLS and HTTP/3)"
	"$FS" gateway serve --data "$D/gw" --pki "$D/pki" --listen 127.0.0.1:$GW_PORT --h3 127.0.0.1:$GW_PORT \
		--admin-listen 127.0.0.1:$ADMIN_PORT --image-key "$D/image.pub" >"$D/gateway.log" 2>&1 &
	gw_pid=$!
	pids+=("$gw_pid")
	wait_port $GW_PORT gateway "$D/gateway.log" "$gw_pid"
	wait_port $ADMIN_PORT "gateway admin API" "$D/gateway.log" "$gw_pid"
	"$FS" gateway upload --admin https://127.0.0.1:$ADMIN_PORT --pki "$D/pki" --hwid $HWID --tag $TAG \
		"$D/image.bin" >"$D/upload.log" 2>&1 || { cat "$D/upload.log" >&2; exit 1; }
	if ! grep -q "$FWPATH" "$D/upload.log"; then
		echo "the gateway's upload did not report $FWPATH:" >&2
		cat "$D/upload.log" >&2
		exit 1
	fi
fi

# ---- nginx serving the same bytes ----------------------------------------
if [ "$have_nginx" = 1 ] && [ "$have_gw" = 0 ]; then
	have_nginx=0
	nginx_why="nginx serves the gateway's signed metadata, and there is no gateway"
fi
if [ "$have_nginx" = 1 ]; then
	echo "== starting nginx $nginx_version on 127.0.0.1:$NGINX_PORT"
	mkdir -p "$D/www/mcu/files/${sha:0:2}" "$D/www/repo" "$D/nginx/tmp"
	cp "$D/image.bin" "$D/www$FWPATH"
	# The check-in baseline answers what the gateway answers: /config 204,
	# PUT /system_info* 200, no root 2 (404), and the gateway's own signed
	# metadata for this tag and board, fetched once as a device would, so
	# the agent's TUF client verifies nginx's answers as it does the
	# gateway's.
	dev=$(awk 'NR==1{print $1}' "$D/pki/devices/index.txt")
	for f in 1.root.json timestamp.json snapshot.json targets.json; do
		curl -sf --cert "$D/pki/devices/$dev.pem" --cacert "$D/pki/ca.crt" -H "x-ats-tags: $TAG" \
			-H "x-ats-target: $HWID-v1" "https://127.0.0.1:$GW_PORT/repo/$f" -o "$D/www/repo/$f" ||
			{ echo "cannot fetch the gateway's $f" >&2; exit 1; }
	done
	chmod -R a+rX "$D/www"
	cat >"$D/nginx/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $D/nginx/nginx.pid;
error_log $D/nginx/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	keepalive_requests 1000000;
	keepalive_timeout 120s;
	client_body_temp_path $D/nginx/tmp/body;
	proxy_temp_path $D/nginx/tmp/proxy;
	fastcgi_temp_path $D/nginx/tmp/fastcgi;
	uwsgi_temp_path $D/nginx/tmp/uwsgi;
	scgi_temp_path $D/nginx/tmp/scgi;
	default_type application/octet-stream;
	types { application/json json; }
	server {
		listen 127.0.0.1:$NGINX_PORT ssl http2;
		ssl_certificate $D/pki/gateway.crt;
		ssl_certificate_key $D/pki/gateway.key;
		ssl_client_certificate $D/pki/ca.crt;
		ssl_verify_client on;
		ssl_protocols TLSv1.2 TLSv1.3;
		ssl_session_cache shared:TLS:10m;
		root $D/www;
		location = /config { return 204; }
		location /system_info { return 200; }
		location / { }
	}
}
EOF
	"$NGINX" -p "$D/nginx" -e "$D/nginx/error.log" -c "$D/nginx/nginx.conf" >"$D/nginx/stdout.log" 2>&1 &
	ng_pid=$!
	pids+=("$ng_pid")
	if ! wait_port $NGINX_PORT nginx "$D/nginx/error.log" "$ng_pid"; then
		have_nginx=0
		nginx_why="nginx did not start (see above)"
	fi
fi

# ---- the runs ----------------------------------------------------------------
# run NAME URL ARGS...: one loadgen run; its JSON goes to $D/NAME.json.
run() {
	local name=$1 url=$2
	shift 2
	printf '   %-26s ' "$name"
	if "$FS" loadgen --json --url "$url" --devices "$D/pki/devices" --duration "$DURATION" --warmup "$WARMUP" \
		--connections "$CONNS" --tag $TAG --target "$HWID-v1" "$@" >"$D/$name.json" 2>"$D/$name.err"; then
		printf 'ok: %.0f req/s, p99 %.2f ms\n' "$(field "$name" req_per_sec)" "$(field "$name" p99_ms)"
	else
		echo "FAILED: $(cat "$D/$name.err")"
	fi
}
# field NAME KEY: a number from a run's JSON ("" when the run failed).
field() {
	[ -s "$D/$1.json" ] || return 0
	sed -n "s/.*\"$2\":\([-0-9.eE+]*\).*/\1/p" "$D/$1.json"
}

GW=https://127.0.0.1:$GW_PORT
NG=https://127.0.0.1:$NGINX_PORT
range_args=(--scenario range --path "$FWPATH" --file "$D/image.bin")
# pair NAME ARGS...: the gateway then nginx, back to back and ROUNDS times
# over, so that both see the same background load on a shared machine.
pair() {
	local name=$1 r
	shift
	for r in $(seq 1 "$ROUNDS"); do
		[ "$have_gw" = 1 ] && run "gw-$name.r$r" "$GW" "$@"
		[ "$have_nginx" = 1 ] && run "ng-$name.r$r" "$NG" "$@"
	done
	pick "gw-$name"
	pick "ng-$name"
}
# solo NAME ARGS...: the gateway alone (nginx 1.22 has no HTTP/3).
solo() {
	local name=$1 r
	shift
	[ "$have_gw" = 1 ] || return 0
	for r in $(seq 1 "$ROUNDS"); do
		run "gw-$name.r$r" "$GW" "$@"
	done
	pick "gw-$name"
}
# pick NAME: the round with the median req/s stands for NAME.
pick() {
	local f best
	best=$(for f in "$D/$1".r*.json; do
		[ -s "$f" ] && printf '%s %s\n' "$(sed -n 's/.*"req_per_sec":\([-0-9.eE+]*\).*/\1/p' "$f")" "$f"
	done | sort -g | awk '{ f[NR] = $2 } END { if (NR) print f[int((NR + 1) / 2)] }') || true
	if [ -n "$best" ]; then cp "$best" "$D/$1.json"; fi
}
load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
echo "== load: $CONNS connections, ${WARMUP} warm-up + ${DURATION} per run, $ROUNDS round(s)"
pair checkin-h1 --scenario checkin --proto h1
pair checkin-h1-reconnect --scenario checkin --proto h1 --reconnect
# An MCU keeps no TLS session between polls: a full handshake each time.
pair checkin-h1-full --scenario checkin --proto h1 --reconnect --resume=false
pair range-h1 "${range_args[@]}" --proto h1
pair range-h2 "${range_args[@]}" --proto h2
solo checkin-h3 --scenario checkin --proto h3
solo range-h3 "${range_args[@]}" --proto h3
load_after=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")

# ---- the table ---------------------------------------------------------------
# cell NAME: "req/s | MB/s | p99 ms | errors" of a run, or dashes.
cell() {
	if [ -s "$D/$1.json" ]; then
		printf '%.0f | %.2f | %.2f | %s' "$(field "$1" req_per_sec)" "$(field "$1" mb_per_sec)" \
			"$(field "$1" p99_ms)" "$(field "$1" errors)"
	else
		printf '– | – | – | –'
	fi
}
ratio() {
	local g n
	g=$(field "$1" req_per_sec)
	n=$(field "$2" req_per_sec)
	if [ -n "$g" ] && [ -n "$n" ]; then
		awk -v g="$g" -v n="$n" 'BEGIN { if (n > 0) printf "%.2f", g / n; else printf "–" }'
	else
		printf '–'
	fi
}
nginx_label="nginx ${nginx_version:-}"
no_h3="n/a: nginx ${nginx_version:-} has no HTTP/3"
[ "$have_nginx" = 1 ] || no_h3="n/a: $nginx_why"
echo
echo "Load test: $(nproc) cores shared by client and server, $CONNS devices (connections), ${DURATION} measured after ${WARMUP} warm-up,"
echo "median of $ROUNDS round(s) by req/s;"
echo "image $size bytes read in 16 KiB ranges; gateway = fleetsim gateway, baseline = $nginx_label (worker_processes 2)."
echo "Load average (1/5/15 min) before: $load_before, after: $load_after (anything else running skews both sides)."
[ "$have_gw" = 1 ] || echo "Gateway not measured: $gw_why."
[ "$have_nginx" = 1 ] || echo "nginx baseline not measured: $nginx_why."
echo
echo "| workload | proto | gateway req/s | gateway MB/s | gateway p99 ms | gateway errors | nginx req/s | nginx MB/s | nginx p99 ms | nginx errors | gateway/nginx req/s |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
row() { # label proto gw-run nginx-run|-
	if [ "$4" = - ]; then
		echo "| $1 | $2 | $(cell "$3") | $no_h3 | | | | – |"
	else
		echo "| $1 | $2 | $(cell "$3") | $(cell "$4") | $(ratio "$3" "$4") |"
	fi
}
row "idle check-in (6 req, keep-alive)" "HTTP/1.1" gw-checkin-h1 ng-checkin-h1
row "idle check-in (6 req, new TLS conn each, resumed)" "HTTP/1.1" gw-checkin-h1-reconnect ng-checkin-h1-reconnect
row "idle check-in (6 req, new TLS conn each, full handshake)" "HTTP/1.1" gw-checkin-h1-full ng-checkin-h1-full
row "idle check-in (6 req, keep-alive)" "HTTP/3" gw-checkin-h3 -
row "16 KiB ranges of the image" "HTTP/1.1" gw-range-h1 ng-range-h1
row "16 KiB ranges of the image" "HTTP/2" gw-range-h2 ng-range-h2
row "16 KiB ranges of the image" "HTTP/3" gw-range-h3 -
echo
echo "Target: gateway/nginx >= 0.5. Runs with errors show their count; a run that could not start shows dashes (its error is above)."
