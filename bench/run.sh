#!/usr/bin/env bash
# bench/run.sh — Breakwater against nginx on the same upstream, on loopback.
#
# One run: installs wrk, nginx and openssl if missing (apt-get), builds the
# gateway, makes a throwaway CA and server certificate, starts
#   - an upstream nginx (plain HTTP, fixed 64-byte body)          core LOAD_CORE
#   - an nginx TLS reverse proxy to it (keep-alive upstream)      core PROXY_CORE
#   - Breakwater (TLS, API-key auth, scopes) to the same upstream,
#     once per value of GOMAXPROCS_LIST                           core PROXY_CORE
# and measures each with wrk (pinned to LOAD_CORE), ROUNDS times, interleaved.
# Every proxy gets exactly one core; the figure that matters is the ratio
# Breakwater/nginx measured on the same machine in the same minutes.
#
# Usage:  bench/run.sh            (as root, from anywhere)
# Knobs (environment):
#   DURATION=10s  ROUNDS=3  WARMUP=2s  CONNECTIONS=50  THREADS=1
#   GOMAXPROCS_LIST="1 2"   Breakwater instances to compare (each pinned to one core)
#   PROFILE=1               after the rounds, profile under the same load:
#                           Breakwater via the admin listener's /debug/pprof
#                           (if served), Breakwater and the nginx proxy with
#                           perf (kernel included), syscalls/request with strace
#   PROFILE_SECONDS=10      length of each profile
#   PROFILE_GOMAXPROCS=N    which Breakwater instance to profile (first of the list)
#   GO_BASELINE=1           also measure bench/stdproxy.go: Go's TLS server and
#                           httputil.ReverseProxy with a key check, nothing else
#   LOAD_CORE=0 PROXY_CORE=1
#   UPSTREAM_PORT=38080 NGINX_PORT=38443 BW_PORT=38444 BW_ADMIN_PORT=39901
#                           first ports tried (loopback); a port in use is skipped
#   SKIP_INSTALL=1          do not call apt-get
#   QUIET_MAX_PCT=15 QUIET_WAIT=180   before measuring, wait up to QUIET_WAIT s
#                           for the machine to be at most QUIET_MAX_PCT % busy
#   MAX_OTHERS_PCT=10 RUN_RETRIES=3   repeat a run during which other processes
#                           used more than MAX_OTHERS_PCT % of a core
#   TARGET_RATIO=0.45       the project's goal for Breakwater/nginx
#   IDENTITY=true           routes[].identity of the bench route: X-Gateway-Identity
#                           (an Ed25519 JWT per request, the default); false: off
# Any other variable of the environment reaches Breakwater too (GOGC=400 ...).
# Output: bench/results/<timestamp>/ (raw wrk output, runs.tsv, summary.txt,
# env.txt, profiles) and bench/results/latest -> that folder. Exit 1 on any
# non-2xx response, failed check or a proxy that does not come up.
# Method and figures: docs/performance.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
WORK=$BENCH/.work
CONFIG=$BENCH/breakwater.yaml
BW_BIN=$WORK/breakwater

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2s}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-1}
GOMAXPROCS_LIST=${GOMAXPROCS_LIST:-"1 2"}
PROFILE=${PROFILE:-0}
GO_BASELINE=${GO_BASELINE:-0}
STD_PORT=${STD_PORT:-38460}
PROFILE_SECONDS=${PROFILE_SECONDS:-10}
LOAD_CORE=${LOAD_CORE:-0}
PROXY_CORE=${PROXY_CORE:-1}
UPSTREAM_PORT=${UPSTREAM_PORT:-38080}
NGINX_PORT=${NGINX_PORT:-38443}
BW_PORT=${BW_PORT:-38444}
BW_ADMIN_PORT=${BW_ADMIN_PORT:-39901}
SKIP_INSTALL=${SKIP_INSTALL:-0}
QUIET_MAX_PCT=${QUIET_MAX_PCT:-15}
QUIET_WAIT=${QUIET_WAIT:-180}
MAX_OTHERS_PCT=${MAX_OTHERS_PCT:-10}
RUN_RETRIES=${RUN_RETRIES:-3}
RUN_QUIET_WAIT=${RUN_QUIET_WAIT:-60}
TARGET_RATIO=${TARGET_RATIO:-0.45}
IDENTITY=${IDENTITY:-true}

REQ_PATH=/v1/bench
# The upstream's fixed body: exactly 64 bytes.
BODY=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef

export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"

# ---------------------------------------------------------------- helpers

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

# Processes started by this script, as "pid:comm", stopped on exit.
STARTED=()
OUR_PIDS=""
POLICY_RC_CREATED=0

# still_ours PID COMM: the process is alive and still the one we started
# (guards against signalling a recycled pid).
still_ours() {
	local comm
	comm=$(cat "/proc/$1/comm" 2>/dev/null) || return 1
	[[ $comm == "$2" ]]
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	local entry pid comm i
	if [[ -n $WRK_PID ]]; then STARTED+=("$WRK_PID:wrk"); fi
	for entry in "${STARTED[@]}"; do
		pid=${entry%%:*} comm=${entry#*:}
		if still_ours "$pid" "$comm"; then kill -TERM "$pid" 2>/dev/null || true; fi
	done
	for entry in "${STARTED[@]}"; do
		pid=${entry%%:*} comm=${entry#*:}
		for ((i = 0; i < 50; i++)); do
			still_ours "$pid" "$comm" || break
			sleep 0.1
		done
		if still_ours "$pid" "$comm"; then
			log "pid $pid ($comm) did not stop on TERM; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	# Reap what is left of our own children.
	wait 2>/dev/null || true
	if [[ $POLICY_RC_CREATED == 1 ]]; then rm -f /usr/sbin/policy-rc.d; fi
	if [[ $rc != 0 ]]; then log "failed (exit $rc); every process started here is stopped"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run_wrk OUTFILE ARGS...: wrk pinned to LOAD_CORE. In the background and
# waited for, so that Ctrl-C runs the trap at once (bash defers traps while a
# foreground command runs, and wrk itself stops cleanly on SIGINT).
WRK_PID=""
run_wrk() {
	local out=$1
	shift
	taskset -c "$LOAD_CORE" wrk "$@" >"$out" &
	WRK_PID=$!
	wait "$WRK_PID"
	WRK_PID=""
}

# track PID COMM: remember a process to stop on exit.
track() {
	STARTED+=("$1:$2")
	OUR_PIDS+=" $1"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pick_port FIRST: the first free loopback port from FIRST on that this run
# has not handed out yet (other benchmarks, demos and tests share the machine).
PICKED=" "
pick_port() {
	local p=$1
	while [[ $PICKED == *" $p "* ]] || ! port_free "$p"; do
		p=$((p + 1))
		[[ $p -lt $(($1 + 200)) ]] || die "no free port in $1..$p"
	done
	PICKED+="$p "
	echo "$p"
}

# wait_port PORT PID WHAT: wait until PORT accepts connections while PID lives.
wait_port() {
	local i
	for ((i = 0; i < 100; i++)); do
		if ! port_free "$1"; then return 0; fi
		kill -0 "$2" 2>/dev/null || die "$3 exited during start-up; see its log in $WORK"
		sleep 0.1
	done
	die "$3 did not listen on 127.0.0.1:$1 within 10s"
}

# cpu_ticks PID...: utime+stime of the processes, in clock ticks.
cpu_ticks() {
	local pid total=0 t
	for pid in "$@"; do
		# Fields after "(comm)": state is field 1, utime 12, stime 13.
		t=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
		total=$((total + ${t:-0}))
	done
	echo "$total"
}

# proc_snapshot FILE: "pid ticks" (utime+stime) of every process on the
# machine except ours and wrk: what else ran while we measured.
proc_snapshot() {
	# cat, not awk FILES: a process that exits meanwhile must not end the list.
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v skip=" $$ $BASHPID $OUR_PIDS " '{
		pid = $1; comm = $0; sub(/^[^(]*\(/, "", comm); sub(/\)[^)]*$/, "", comm)
		rest = $0; sub(/^.*\) /, "", rest); split(rest, f, " ")
		if (index(skip, " " pid " ") == 0 && comm != "wrk") print pid, f[12] + f[13]
	}' >"$1" || true
}

# foreign_pct BEFORE AFTER WALL_CENTISECONDS: CPU % (of one core) used by other
# processes between two snapshots (those that started in between count whole).
foreign_pct() {
	awk -v w="$3" -v hz="$HZ" 'NR == FNR { a[$1] = $2; next }
		{ d = ($1 in a) ? $2 - a[$1] : $2; if (d > 0) s += d }
		END { printf "%.0f", s * 100 / hz * 100 / w }' "$1" "$2"
}

# machine_busy_pct SECONDS: how busy the whole machine is (% of all cores).
machine_busy_pct() {
	local a b
	a=$(awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat)
	sleep "$1"
	b=$(awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat)
	awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.0f", (y[1] - x[1]) * 100 / (y[2] - x[2]) }'
}

# wait_quiet: other work on the machine (builds, tests) skews the figures;
# wait a while for it to end, then go on with a warning.
wait_quiet() {
	local busy waited=0
	busy=$(machine_busy_pct 3)
	while [[ $busy -gt $QUIET_MAX_PCT && $waited -lt $QUIET_WAIT ]]; do
		log "machine ${busy}% busy before the run (other processes); waiting for <= ${QUIET_MAX_PCT}% ($waited/${QUIET_WAIT}s)"
		sleep 7
		waited=$((waited + 10))
		busy=$(machine_busy_pct 3)
	done
	if [[ $busy -gt $QUIET_MAX_PCT ]]; then
		log "WARNING: machine still ${busy}% busy; measuring anyway, figures will be noisy (see the noise column)"
	fi
	QUIET_BUSY=$busy
}

# core_ticks CORE: "busy total steal" ticks of one core from /proc/stat
# (steal: time the hypervisor ran something else while this vCPU wanted to run).
core_ticks() {
	awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t, $9 }' /proc/stat
}

# to_us LATENCY: wrk's "412.00us" / "1.23ms" / "2.00s" in microseconds.
to_us() {
	awk -v v="$1" 'BEGIN {
		n = v; sub(/[a-z]+$/, "", n); u = v; sub(/^[0-9.]+/, "", u)
		if (u == "us") m = 1; else if (u == "ms") m = 1000; else if (u == "s") m = 1000000; else if (u == "m") m = 60000000; else m = -1
		if (m < 0) print "NaN"; else printf "%.1f\n", n * m
	}'
}

# parse_wrk FILE: "rps p50_us p99_us non2xx socket_errors".
parse_wrk() {
	local rps p50 p99 non2xx sockerr
	rps=$(awk '/^Requests\/sec:/ { print $2 }' "$1")
	p50=$(to_us "$(awk '$1 == "50%" { print $2 }' "$1")")
	p99=$(to_us "$(awk '$1 == "99%" { print $2 }' "$1")")
	non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$1")
	sockerr=$(awk '/Socket errors:/ { gsub(/,/, ""); print $4 + $6 + $8 + $10 }' "$1")
	[[ -n $rps ]] || die "cannot read Requests/sec from $1"
	echo "$rps $p50 $p99 ${non2xx:-0} ${sockerr:-0}"
}

# median: the median of the numbers on stdin (one per line).
median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "NaN"; exit }
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2
	}'
}

# ---------------------------------------------------------------- 1. tools

install_tools() {
	local need=()
	command -v wrk >/dev/null || need+=(wrk)
	command -v nginx >/dev/null || need+=(nginx)
	command -v openssl >/dev/null || need+=(openssl)
	command -v taskset >/dev/null || need+=(util-linux)
	command -v curl >/dev/null || need+=(curl)
	[[ ${#need[@]} -gt 0 ]] || return 0
	[[ $SKIP_INSTALL != 1 ]] || die "missing ${need[*]} and SKIP_INSTALL=1"
	[[ $(id -u) == 0 ]] || die "missing ${need[*]}; run as root (apt-get) or install them"
	log "installing ${need[*]}"
	# Keep Debian's nginx package from starting its own service on :80.
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		POLICY_RC_CREATED=1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update
	apt-get install -y --no-install-recommends "${need[@]}"
	if [[ $POLICY_RC_CREATED == 1 ]]; then
		rm -f /usr/sbin/policy-rc.d
		POLICY_RC_CREATED=0
	fi
}

# ---------------------------------------------------------------- 2. material

make_certs() {
	local d=$WORK/pki
	rm -rf "$d"
	mkdir -p "$d"
	(
		umask 077
		cd "$d"
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
		openssl req -x509 -new -key ca.key -sha256 -days 2 -subj "/CN=Breakwater bench CA (throwaway)" \
			-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
			-out ca.pem
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key 2>/dev/null
		openssl req -new -key server.key -subj "/CN=localhost" -out server.csr
		cat >server.ext <<-'EOF'
			basicConstraints = critical, CA:FALSE
			keyUsage = critical, digitalSignature
			extendedKeyUsage = serverAuth
			subjectAltName = DNS:localhost, IP:127.0.0.1
		EOF
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -sha256 \
			-extfile server.ext -out server.pem 2>/dev/null
		chmod 644 ca.pem server.pem
	)
	openssl verify -CAfile "$d/ca.pem" "$d/server.pem" >/dev/null || die "generated certificate does not verify"
	CA=$d/ca.pem CERT=$d/server.pem CERT_KEY=$d/server.key
}

make_secrets() {
	local out digest
	out=$("$BW_BIN" keys new --prefix bwbench_)
	API_KEY=$(awk '$1 == "key:" { print $2 }' <<<"$out")
	[[ -n $API_KEY ]] || die "cannot read the key from 'breakwater keys new'"
	KEY_HASH=$(printf %s "$API_KEY" | "$BW_BIN" secret hash)
	digest=$(sed -n 's/.*api_key: "\(.*\)".*/\1/p' <<<"$out")
	[[ $digest == "$KEY_HASH" ]] || die "'keys new' and 'secret hash' disagree on the key's digest"
	ADMIN_TOKEN=$(openssl rand -hex 32)
	ADMIN_HASH=$(printf %s "$ADMIN_TOKEN" | "$BW_BIN" secret hash)
}

write_nginx_configs() {
	local up=$WORK/nginx-upstream px=$WORK/nginx-proxy
	mkdir -p "$up" "$px"
	cat >"$up/nginx.conf" <<-EOF
		# Upstream of the benchmark: a fixed ${#BODY}-byte body, plain HTTP, keep-alive.
		worker_processes 1;
		daemon off;
		pid $up/nginx.pid;
		error_log $up/error.log warn;
		events { worker_connections 4096; }
		http {
		    access_log off;
		    default_type text/plain;
		    keepalive_timeout 65s;
		    keepalive_requests 1000000;
		    client_body_temp_path $up/tmp-body;
		    proxy_temp_path $up/tmp-proxy;
		    server {
		        listen 127.0.0.1:$UPSTREAM_PORT backlog=4096;
		        location / { return 200 "$BODY"; }
		    }
		}
	EOF
	cat >"$px/nginx.conf" <<-EOF
		# The reference: nginx as a TLS reverse proxy to the same upstream.
		worker_processes 1;
		daemon off;
		pid $px/nginx.pid;
		error_log $px/error.log warn;
		events { worker_connections 4096; }
		http {
		    access_log off;
		    keepalive_timeout 65s;
		    keepalive_requests 1000000;
		    client_body_temp_path $px/tmp-body;
		    proxy_temp_path $px/tmp-proxy;
		    upstream bench_upstream {
		        server 127.0.0.1:$UPSTREAM_PORT;
		        keepalive 64;
		        keepalive_requests 1000000;
		        keepalive_timeout 60s;
		    }
		    server {
		        listen 127.0.0.1:$NGINX_PORT ssl backlog=4096;
		        ssl_certificate $CERT;
		        ssl_certificate_key $CERT_KEY;
		        ssl_protocols TLSv1.2 TLSv1.3;
		        ssl_session_cache shared:bench:1m;
		        location / {
		            proxy_pass http://bench_upstream;
		            proxy_http_version 1.1;
		            proxy_set_header Connection "";
		        }
		    }
		}
	EOF
}

# ---------------------------------------------------------------- 3. processes
# Servers run in sessions of their own (setsid), so that Ctrl-C reaches this
# script, whose trap stops them, rather than killing them under a running wrk.

# start_nginx NAME CORE PORT: start nginx with $WORK/NAME/nginx.conf pinned to
# CORE; sets STARTED_PIDS to its master and worker pids.
start_nginx() {
	local name=$1 core=$2 port=$3 dir=$WORK/$1 pid workers
	port_free "$port" || die "127.0.0.1:$port is in use; set another port (see the header of $0)"
	nginx -t -q -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" || die "nginx config $dir/nginx.conf is invalid"
	setsid taskset -c "$core" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" >"$dir/stdout.log" 2>&1 &
	pid=$!
	track "$pid" nginx
	wait_port "$port" "$pid" "nginx ($name)"
	workers=$(ps -o pid= --ppid "$pid" | awk '{ printf "%s%s", (NR > 1 ? " " : ""), $1 }')
	local w
	for w in $workers; do track "$w" nginx; done
	STARTED_PIDS="$pid $workers"
}

# Ports of the Breakwater instances, by GOMAXPROCS.
declare -A BWP=() BWA=()

# bw_env GOMAXPROCS: the environment of the Breakwater instance.
bw_env() {
	local i=$1
	echo "BW_BENCH_HTTPS=127.0.0.1:${BWP[$i]}"
	echo "BW_BENCH_ADMIN=127.0.0.1:${BWA[$i]}"
	echo "BW_BENCH_DATA=$WORK/bw-data-$i"
	echo "BW_BENCH_CERT=$CERT"
	echo "BW_BENCH_CERT_KEY=$CERT_KEY"
	echo "BW_BENCH_ADMIN_HASH=$ADMIN_HASH"
	echo "BW_BENCH_KEY_HASH=$KEY_HASH"
	echo "BW_BENCH_UPSTREAM=http://127.0.0.1:$UPSTREAM_PORT"
	echo "BW_BENCH_IDENTITY=$IDENTITY"
}

# start_breakwater N: instance N (N = its GOMAXPROCS) pinned alone to PROXY_CORE.
start_breakwater() {
	local n=$1 port=${BWP[$1]} pid
	mkdir -p "$WORK/bw-data-$n"
	local -a envs
	mapfile -t envs < <(bw_env "$n")
	env "${envs[@]}" "$BW_BIN" validate -c "$CONFIG" >/dev/null || die "breakwater validate -c $CONFIG failed"
	env "${envs[@]}" GOMAXPROCS="$n" setsid taskset -c "$PROXY_CORE" \
		"$BW_BIN" serve -c "$CONFIG" --access-log off --log-level warn >"$WORK/bw-$n.log" 2>&1 &
	pid=$!
	track "$pid" breakwater
	wait_port "$port" "$pid" "breakwater (GOMAXPROCS=$n)"
	printf -v "BW_PID_$n" '%s' "$pid"
}

# ---------------------------------------------------------------- 4. checks

# check_target NAME URL [curl args...]: one request must give 200 and the body.
check_target() {
	local name=$1 url=$2 out code body
	shift 2
	out=$(curl -sS --max-time 5 --cacert "$CA" -o "$WORK/check.body" -w '%{http_code}' "$@" "$url") ||
		die "$name: request to $url failed"
	code=$out body=$(cat "$WORK/check.body")
	[[ $code == 200 ]] || die "$name: $url answered $code, want 200 (body: ${body:0:200})"
	[[ $body == "$BODY" ]] || die "$name: $url answered a body other than the upstream's 64 bytes"
}

# expect_status NAME CODE URL [curl args...]
expect_status() {
	local name=$1 want=$2 url=$3 code
	shift 3
	code=$(curl -sS --max-time 5 --cacert "$CA" -o /dev/null -w '%{http_code}' "$@" "$url") ||
		die "$name: request to $url failed"
	[[ $code == "$want" ]] || die "$name: $url answered $code, want $want"
}

# ---------------------------------------------------------------- 5. runs

# measure LABEL URL PIDS PROXIED [wrk script]: warm-up, then one measured wrk
# run; repeated (at most RUN_RETRIES times) while other processes took more
# than MAX_OTHERS_PCT % of a core meanwhile. Appends a row to runs.tsv and
# fails on any non-2xx/3xx response. A function measure_hook, if defined (by
# bench/limits.sh), is called as "measure_hook before|after LABEL" right
# around each measured wrk run.
measure() {
	local label=$1 url=$2 pids=$3 proxied=$4 script=${5:-} raw c0a c0b c1a c1b pa pb t0 t1 attempt=0
	local rps p50 p99 non2xx sockerr wall pcpu core0 core1 foreign noise s0a s0b s1a s1b steal
	local -a sargs=()
	[[ -z $script ]] || sargs=(-s "$script")
	raw=$OUT/raw/round$ROUND-$label.txt
	while :; do
		attempt=$((attempt + 1))
		run_wrk "$OUT/raw/round$ROUND-$label.warmup.txt" -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "${sargs[@]}" "$url"
		# shellcheck disable=SC2086 # pids is a list
		pa=$(cpu_ticks $pids)
		proc_snapshot "$WORK/procs.before"
		read -r c0a _ s0a < <(core_ticks "$LOAD_CORE")
		read -r c1a _ s1a < <(core_ticks "$PROXY_CORE")
		if declare -F measure_hook >/dev/null; then measure_hook before "$label"; fi
		t0=$(date +%s%N)
		run_wrk "$raw" -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "${sargs[@]}" "$url"
		t1=$(date +%s%N)
		if declare -F measure_hook >/dev/null; then measure_hook after "$label"; fi
		# shellcheck disable=SC2086
		pb=$(cpu_ticks $pids)
		proc_snapshot "$WORK/procs.after"
		read -r c0b _ s0b < <(core_ticks "$LOAD_CORE")
		read -r c1b _ s1b < <(core_ticks "$PROXY_CORE")
		read -r rps p50 p99 non2xx sockerr < <(parse_wrk "$raw")
		if [[ $non2xx != 0 ]]; then
			die "$label: $non2xx responses were not 2xx/3xx (wrk: 'Non-2xx or 3xx responses'); see $raw"
		fi
		wall=$(((t1 - t0) / 10000000)) # in 1/100 s
		pcpu=$(pct "$pa" "$pb" "$wall")
		core0=$(pct "$c0a" "$c0b" "$wall")
		core1=$(pct "$c1a" "$c1b" "$wall")
		foreign=$(foreign_pct "$WORK/procs.before" "$WORK/procs.after" "$wall")
		steal=$(pct "$((s0a + s1a))" "$((s0b + s1b))" "$wall")
		# Noise: CPU of other processes; for a proxy also whatever else kept its
		# core busy (short-lived processes that the snapshots miss).
		noise=$foreign
		if [[ $proxied == 1 && $((core1 - pcpu)) -gt $noise ]]; then noise=$((core1 - pcpu)); fi
		log "$(printf 'round %s %-8s %8.0f req/s  p50 %6.0fus  p99 %7.0fus  server CPU %3s%%  core%s %3s%%  core%s %3s%%  noise %3s%%  steal %2s%%' \
			"$ROUND" "$label" "$rps" "$p50" "$p99" "$pcpu" "$LOAD_CORE" "$core0" "$PROXY_CORE" "$core1" "$noise" "$steal")"
		if [[ $sockerr != 0 ]]; then log "WARNING: $label: $sockerr socket errors (see $raw)"; fi
		[[ $noise -gt $MAX_OTHERS_PCT && $attempt -le $RUN_RETRIES ]] || break
		log "other processes took ${noise}% of a core during that run (> ${MAX_OTHERS_PCT}%); repeating it"
		QUIET_WAIT=$RUN_QUIET_WAIT wait_quiet
	done
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$ROUND" "$label" "$rps" "$p50" "$p99" "$non2xx" "$sockerr" \
		"$pcpu" "$core0" "$core1" "$noise" "$attempt" "$steal" >>"$OUT/runs.tsv"
}

# pct A B WALL: CPU % of one core from tick counters A, B over WALL (1/100 s).
pct() { awk -v a="$1" -v b="$2" -v w="$3" -v hz="$HZ" 'BEGIN { printf "%.0f", (b - a) * 100 / hz * 100 / w }'; }

# col LABEL N: the median over rounds of column N of runs.tsv for LABEL.
col() { awk -F'\t' -v l="$1" -v c="$2" '$2 == l { print $c }' "$OUT/runs.tsv" | median; }

# ratio A B [FORMAT]
ratio() { awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN { printf f, (b == 0 ? 0 : a / b) }'; }

# per_cpu RPS CPU_PCT: requests per CPU-second of the serving process(es).
per_cpu() { awk -v r="$1" -v c="$2" 'BEGIN { printf "%.0f", (c == 0 ? 0 : r * 100 / c) }'; }

summarise() {
	local tsv=$OUT/runs.tsv label rps p50 p99 cpu others n_rps n_eff eff
	n_rps=$(col nginx 3)
	n_eff=$(per_cpu "$n_rps" "$(col nginx 8)")
	{
		echo "Breakwater vs nginx — $(date -u '+%Y-%m-%d %H:%M UTC')"
		echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, keep-alive; $ROUNDS interleaved rounds, ${WARMUP} warm-up before each run"
		echo "upstream + wrk pinned to core $LOAD_CORE; each proxy alone on core $PROXY_CORE; medians over rounds"
		echo
		printf '%-24s %9s %8s %8s %7s %10s %7s %9s %9s\n' target "req/s" "p50 ms" "p99 ms" "CPU" "req/CPU-s" "noise" "vs nginx" "per CPU"
		for label in "${LABELS[@]}"; do
			rps=$(col "$label" 3) p50=$(col "$label" 4) p99=$(col "$label" 5) cpu=$(col "$label" 8) others=$(col "$label" 11)
			eff=$(per_cpu "$rps" "$cpu")
			printf '%-24s %9.0f %8.3f %8.3f %6.0f%% %10s %6.0f%% %8sx %8sx\n' "$(describe "$label")" "$rps" \
				"$(ratio "$p50" 1000 %.3f)" "$(ratio "$p99" 1000 %.3f)" "$cpu" "$eff" "$others" \
				"$(ratio "$rps" "$n_rps")" "$(ratio "$eff" "$n_eff")"
		done
		echo
		echo "CPU: CPU time of the serving process(es) / wall time (100% = one core). req/CPU-s: req/s / CPU."
		echo "noise: CPU used meanwhile by processes outside this benchmark (% of a core; ideally ~0%)."
		echo "vs nginx: req/s ratio (median over median). per CPU: ratio of req/CPU-s, the proxies' cost per"
		echo "request; it is the fairer figure when the nginx proxy does not saturate its core (see below)."
		echo
		echo "Breakwater/nginx, headline: the median over rounds of the ratio within each round (both measured"
		echo "a minute apart at most, so drift of the host cancels out); also the ratio of the medians."
		local n best="" best_ratio=0 r per_round
		for n in $GOMAXPROCS_LIST; do
			per_round=$(awk -F'\t' -v l="bw-gmp$n" '$2 == "nginx" { ng[$1] = $3 } $2 == l { bw[$1] = $3 }
				END { for (i = 1; i in bw; i++) s = s sprintf("%s%.3f", (i == 1 ? "" : " "), bw[i] / ng[i]); print s }' "$tsv")
			r=$(tr ' ' '\n' <<<"$per_round" | median)
			r=$(ratio "$r" 1 %.3f)
			echo "Breakwater (GOMAXPROCS=$n) / nginx: ${r}x (rounds: $per_round); ratio of medians $(ratio "$(col "bw-gmp$n" 3)" "$n_rps" %.3f)x; per CPU-second $(ratio "$(per_cpu "$(col "bw-gmp$n" 3)" "$(col "bw-gmp$n" 8)")" "$n_eff" %.3f)x"
			if awk -v a="$r" -v b="$best_ratio" 'BEGIN { exit !(a > b) }'; then best=$n best_ratio=$r; fi
		done
		if [[ $GO_BASELINE == 1 ]]; then
			echo "Go stdlib proxy + key / nginx: $(ratio "$(col go-stdlib 3)" "$n_rps" %.3f)x req/s;" \
				"Breakwater (GOMAXPROCS=$FIRST_N) / Go stdlib proxy: $(ratio "$(col "bw-gmp$FIRST_N" 3)" "$(col go-stdlib 3)" %.3f)x req/s"
		fi
		if awk -v a="$best_ratio" -v t="$TARGET_RATIO" 'BEGIN { exit !(a >= t) }'; then
			echo "Target Breakwater/nginx >= ${TARGET_RATIO}x (req/s): met (best: GOMAXPROCS=$best, ${best_ratio}x)"
		else
			echo "Target Breakwater/nginx >= ${TARGET_RATIO}x (req/s): NOT met (best: GOMAXPROCS=$best, ${best_ratio}x)"
		fi
		for label in "${LABELS[@]}"; do
			[[ $label != direct ]] || continue
			if awk -v c="$(col "$label" 8)" -v l="$(col "$label" 9)" -v n="$(col "$label" 11)" -v m="$MAX_OTHERS_PCT" 'BEGIN { exit !(c < 90 && l >= 95 && n <= m) }'; then
				echo "Note: $(describe "$label") used $(col "$label" 8)% of its core while core $LOAD_CORE (wrk + upstream) was $(col "$label" 9)% busy:"
				echo "      its req/s is bounded by the load generator, not by the proxy; compare per CPU-second."
			fi
		done
		if awk -F'\t' 'NR > 1 && $13 > 5 { found = 1 } END { exit !found }' "$tsv"; then
			echo "WARNING: the hypervisor stole more than 5% CPU during some runs (steal_pct in runs.tsv): noisy host."
		fi
		if awk -F'\t' -v m="$MAX_OTHERS_PCT" 'NR > 1 && $11 > m { found = 1 } END { exit !found }' "$tsv"; then
			echo "WARNING: some runs had more than ${MAX_OTHERS_PCT}% noise even after retries: the machine was busy; see runs.tsv."
		fi
		echo "All responses were 2xx (wrk reported no 'Non-2xx or 3xx responses')."
		echo "Raw wrk outputs: raw/; per run: runs.tsv."
	} >"$OUT/summary.txt"
}

describe() {
	case $1 in
	direct) echo "direct (http)" ;;
	nginx) echo "nginx TLS proxy" ;;
	bw-gmp*) echo "breakwater GOMAXPROCS=${1#bw-gmp}" ;;
	go-stdlib) echo "Go stdlib proxy + key" ;;
	*) echo "$1" ;;
	esac
}

# perf_profile LABEL URL PIDS [wrk script]: perf record of the serving
# process(es) for PROFILE_SECONDS under the benchmark's load.
perf_profile() {
	local label=$1 url=$2 pids=$3 script=${4:-} secs=$PROFILE_SECONDS wrk_pid f=$OUT/perf-$1
	local -a sargs=()
	[[ -z $script ]] || sargs=(-s "$script")
	taskset -c "$LOAD_CORE" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$((secs + 3))s" --latency "${sargs[@]}" "$url" >"$OUT/raw/profile-$label-wrk.txt" &
	wrk_pid=$!
	track "$wrk_pid" wrk
	sleep 1
	# perf itself on the load core, so that the proxy core only runs the proxy.
	local csv
	csv=$(awk '{ $1 = $1; gsub(/ /, ","); print }' <<<"$pids")
	taskset -c "$LOAD_CORE" perf record -q -e cpu-clock -F 999 -g -p "$csv" -o "$f.data" -- sleep "$secs" 2>"$f-record.log" ||
		log "WARNING: perf record of $label failed (see $f-record.log)"
	wait "$wrk_pid" || true
	perf report --stdio --no-children --sort symbol -g none -i "$f.data" >"$f-self.txt" 2>/dev/null || true
	perf report --stdio --children --sort symbol -g none -i "$f.data" >"$f-children.txt" 2>/dev/null || true
	perf report --stdio --no-children --sort dso -g none -i "$f.data" >"$f-dso.txt" 2>/dev/null || true
	perf report --stdio --no-children --sort symbol -g caller,0.5,callee --percent-limit 2 -i "$f.data" >"$f-callgraph.txt" 2>/dev/null || true
}

# top FILE N: the first N entries of a perf report.
top() { awk -v n="$2" '/^$/ || /^#/ { next } { sub(/[[:space:]]+-[[:space:]]+-[[:space:]]*$/, ""); if (++i <= n) print }' "$1"; }

# profile N: CPU profiles of Breakwater instance N and of the nginx proxy
# under the same load, and their system calls per request.
profile() {
	local n=$1 pidvar="BW_PID_$1" pid url code secs=$PROFILE_SECONDS
	pid=${!pidvar}
	url="https://127.0.0.1:${BWP[$n]}$REQ_PATH"
	local admin="http://127.0.0.1:${BWA[$n]}"
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ADMIN_TOKEN" "$admin/debug/pprof/" || true)
	if [[ $code == 200 ]]; then
		log "PROFILE=1: CPU profile of breakwater GOMAXPROCS=$n for ${secs}s from the admin listener's /debug/pprof"
		taskset -c "$LOAD_CORE" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$((secs + 3))s" -s "$BENCH/auth.lua" "$url" >"$OUT/raw/profile-pprof-wrk.txt" &
		local wrk_pid=$!
		track "$wrk_pid" wrk
		sleep 1
		curl -sS --max-time "$((secs + 10))" -H "Authorization: Bearer $ADMIN_TOKEN" \
			-o "$OUT/cpu.pprof" "$admin/debug/pprof/profile?seconds=$secs"
		wait "$wrk_pid" || true
		go tool pprof -top -nodecount=60 "$BW_BIN" "$OUT/cpu.pprof" >"$OUT/pprof-top.txt" 2>&1 || true
		go tool pprof -top -cum -nodecount=80 "$BW_BIN" "$OUT/cpu.pprof" >"$OUT/pprof-cum.txt" 2>&1 || true
		log "pprof profile: $OUT/cpu.pprof (go tool pprof -http=: $BW_BIN $OUT/cpu.pprof); tops in pprof-top.txt, pprof-cum.txt"
	else
		log "PROFILE=1: the admin listener has no /debug/pprof (HTTP $code); using perf instead"
	fi
	if command -v perf >/dev/null && perf record -q -e cpu-clock -o /dev/null -- true >/dev/null 2>&1; then
		log "PROFILE=1: perf profiles (${secs}s each) of breakwater GOMAXPROCS=$n and of the nginx proxy"
		perf_profile "breakwater-gmp$n" "$url" "$pid" "$BENCH/auth.lua"
		perf_profile nginx "https://127.0.0.1:$NGINX_PORT$REQ_PATH" "$PROXY_PIDS"
		{
			echo "# perf record -e cpu-clock -F 999 -g -p PID, ${secs}s under the benchmark's load (perf-*.data)"
			echo "# where the time goes, by binary: breakwater GOMAXPROCS=$n"
			top "$OUT/perf-breakwater-gmp$n-dso.txt" 8
			echo "# where the time goes, by binary: nginx TLS proxy"
			top "$OUT/perf-nginx-dso.txt" 8
			echo
			echo "# breakwater: self time (perf report --no-children)"
			top "$OUT/perf-breakwater-gmp$n-self.txt" 60
			echo
			echo "# breakwater: inclusive time (perf report --children)"
			top "$OUT/perf-breakwater-gmp$n-children.txt" 80
			echo
			echo "# nginx: self time (perf report --no-children)"
			top "$OUT/perf-nginx-self.txt" 30
		} >"$OUT/profile.txt"
		log "profiles written to $OUT/profile.txt (full reports: perf-*.txt)"
	elif [[ $code != 200 ]]; then
		log "PROFILE=1: perf is not usable either; profile skipped"
		echo "profile skipped: the admin listener has no /debug/pprof and perf is not usable here" >"$OUT/profile.txt"
	fi
	if command -v strace >/dev/null; then
		log "PROFILE=1: counting system calls per request (strace -c) of the nginx proxy and Breakwater"
		: >"$OUT/syscalls.txt"
		syscalls_per_request nginx "https://127.0.0.1:$NGINX_PORT$REQ_PATH" "$PROXY_PIDS"
		syscalls_per_request "breakwater-gmp$n" "$url" "$pid" "$BENCH/auth.lua"
		log "system calls per request written to $OUT/syscalls.txt"
	else
		log "PROFILE=1: strace not installed; system calls per request not counted"
	fi
}

# syscalls_per_request LABEL URL PIDS [wrk script]: system calls of the
# serving process(es) per request, counted by strace -c under wrk load.
syscalls_per_request() {
	local label=$1 url=$2 pids=$3 script=${4:-} spid reqs p
	local -a sargs=() pargs=()
	[[ -z $script ]] || sargs=(-s "$script")
	for p in $pids; do pargs+=(-p "$p"); done
	taskset -c "$LOAD_CORE" strace -c -f -o "$OUT/strace-$label.txt" "${pargs[@]}" 2>/dev/null &
	spid=$!
	track "$spid" strace
	sleep 1
	run_wrk "$OUT/raw/strace-$label-wrk.txt" -t"$THREADS" -c"$CONNECTIONS" -d3s "${sargs[@]}" "$url"
	kill -INT "$spid" 2>/dev/null || true
	wait "$spid" || true
	reqs=$(awk '/ requests in / { print $1 }' "$OUT/raw/strace-$label-wrk.txt")
	awk -v r="$reqs" -v l="$label" '$NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && $NF != "total" {
		printf "%-26s %-16s %8.2f\n", l, $NF, $4 / r; t += $4 }
		END { printf "%-26s %-16s %8.2f   (%d requests under strace)\n", l, "TOTAL", t / r, r }' "$OUT/strace-$label.txt" |
		sort -k3,3gr >>"$OUT/syscalls.txt"
}

# ---------------------------------------------------------------- main

main() {
	[[ $(nproc) -ge 2 ]] || die "needs at least 2 cores (LOAD_CORE and PROXY_CORE)"
	[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
	read -r FIRST_N _ <<<"$GOMAXPROCS_LIST"
	[[ -n ${FIRST_N:-} ]] || die "GOMAXPROCS_LIST is empty"
	install_tools
	HZ=$(getconf CLK_TCK)

	mkdir -p "$WORK"
	log "building the gateway"
	(cd "$ROOT" && go build -o bench/.work/breakwater ./cmd/breakwater)
	if [[ $GO_BASELINE == 1 ]]; then (cd "$ROOT" && go build -o bench/.work/stdproxy bench/stdproxy.go); fi
	make_certs
	make_secrets

	local stamp
	stamp=$(date +%Y%m%d-%H%M%S)
	OUT=$BENCH/results/$stamp
	mkdir -p "$OUT/raw"
	ln -sfn "$stamp" "$BENCH/results/latest"

	UPSTREAM_PORT=$(pick_port "$UPSTREAM_PORT")
	NGINX_PORT=$(pick_port "$NGINX_PORT")
	local n p=$BW_PORT a=$BW_ADMIN_PORT
	for n in $GOMAXPROCS_LIST; do
		[[ $n =~ ^[1-9][0-9]*$ ]] || die "GOMAXPROCS_LIST: $n is not a positive integer"
		BWP[$n]=$(pick_port "$p") BWA[$n]=$(pick_port "$a")
		p=$((BWP[$n] + 1)) a=$((BWA[$n] + 1))
	done
	if [[ $GO_BASELINE == 1 ]]; then STD_PORT=$(pick_port "$STD_PORT"); fi
	write_nginx_configs
	log "starting upstream nginx (core $LOAD_CORE, :$UPSTREAM_PORT) and nginx TLS proxy (core $PROXY_CORE, :$NGINX_PORT)"
	start_nginx nginx-upstream "$LOAD_CORE" "$UPSTREAM_PORT"
	UPSTREAM_PIDS=$STARTED_PIDS
	start_nginx nginx-proxy "$PROXY_CORE" "$NGINX_PORT"
	PROXY_PIDS=$STARTED_PIDS
	for n in $GOMAXPROCS_LIST; do
		log "starting breakwater GOMAXPROCS=$n (core $PROXY_CORE, :${BWP[$n]}, admin :${BWA[$n]})"
		start_breakwater "$n"
	done

	if [[ $GO_BASELINE == 1 ]]; then
		log "starting the Go stdlib baseline proxy (core $PROXY_CORE, :$STD_PORT)"
		GOMAXPROCS=1 setsid taskset -c "$PROXY_CORE" "$WORK/stdproxy" -listen "127.0.0.1:$STD_PORT" \
			-upstream "http://127.0.0.1:$UPSTREAM_PORT" -cert "$CERT" -key "$CERT_KEY" -key-digest "$KEY_HASH" \
			>"$WORK/stdproxy.log" 2>&1 &
		STD_PID=$!
		track "$STD_PID" stdproxy
		wait_port "$STD_PORT" "$STD_PID" "stdproxy"
		check_target "Go stdlib proxy" "https://127.0.0.1:$STD_PORT$REQ_PATH" -H "X-API-Key: $API_KEY"
		expect_status "Go stdlib proxy without key" 401 "https://127.0.0.1:$STD_PORT$REQ_PATH"
	fi

	# Functional checks: every target serves the upstream's body; Breakwater
	# verifies its certificate against our CA and enforces the key.
	local direct_url="http://127.0.0.1:$UPSTREAM_PORT$REQ_PATH"
	local nginx_url="https://127.0.0.1:$NGINX_PORT$REQ_PATH"
	check_target direct "$direct_url"
	check_target nginx "$nginx_url"
	for n in $GOMAXPROCS_LIST; do
		local bw_url="https://127.0.0.1:${BWP[$n]}$REQ_PATH"
		check_target "breakwater" "$bw_url" -H "X-API-Key: $API_KEY"
		expect_status "breakwater without key" 401 "$bw_url"
		expect_status "breakwater with a wrong key" 401 "$bw_url" -H "X-API-Key: bwbench_wrong"
		expect_status "breakwater admin without token" 401 "http://127.0.0.1:${BWA[$n]}/admin/config"
	done
	curl -sS --http1.1 --cacert "$CA" -D - -o /dev/null -H "X-API-Key: $API_KEY" \
		"https://127.0.0.1:${BWP[$FIRST_N]}$REQ_PATH" >"$OUT/breakwater-response-headers.txt"
	curl -sS --http1.1 --cacert "$CA" -D - -o /dev/null "$nginx_url" >"$OUT/nginx-response-headers.txt"
	log "checks passed: 200 with the 64-byte body on every target; 401 without or with a wrong key"

	wait_quiet
	write_env
	export BW_BENCH_API_KEY=$API_KEY # read by auth.lua

	LABELS=(direct nginx)
	for n in $GOMAXPROCS_LIST; do LABELS+=("bw-gmp$n"); done
	if [[ $GO_BASELINE == 1 ]]; then LABELS+=(go-stdlib); fi
	printf 'round\ttarget\trps\tp50_us\tp99_us\tnon2xx\tsocket_errors\tserver_cpu_pct\tcore%s_pct\tcore%s_pct\tnoise_pct\tattempts\tsteal_pct\n' \
		"$LOAD_CORE" "$PROXY_CORE" >"$OUT/runs.tsv"
	log "measuring: $ROUNDS rounds of ${LABELS[*]}, $DURATION each (+$WARMUP warm-up)"
	for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
		measure direct "$direct_url" "$UPSTREAM_PIDS" 0
		measure nginx "$nginx_url" "$PROXY_PIDS" 1
		for n in $GOMAXPROCS_LIST; do
			local pidvar="BW_PID_$n"
			measure "bw-gmp$n" "https://127.0.0.1:${BWP[$n]}$REQ_PATH" "${!pidvar}" 1 "$BENCH/auth.lua"
		done
		if [[ $GO_BASELINE == 1 ]]; then
			measure go-stdlib "https://127.0.0.1:$STD_PORT$REQ_PATH" "$STD_PID" 1 "$BENCH/auth.lua"
		fi
	done
	echo "loadavg after: $(cat /proc/loadavg)" >>"$OUT/env.txt"

	summarise
	if [[ $PROFILE == 1 ]]; then
		profile "${PROFILE_GOMAXPROCS:-$FIRST_N}"
	fi
	echo
	cat "$OUT/summary.txt"
	echo
	log "results in $OUT"
}

write_env() {
	{
		echo "date: $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
		echo "host: $(uname -srm); $(nproc) cores; $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
		echo "memory: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
		echo "os: $(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release)"
		echo "go: $(go version)"
		echo "breakwater: $("$BW_BIN" version | tr '\n' ' ')"
		echo "git: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo none)$(cd "$ROOT" && [[ -n $(git status --porcelain -- . ':!bench' 2>/dev/null) ]] && echo ' (uncommitted changes outside bench/)')"
		echo "nginx: $(nginx -v 2>&1)"
		echo "wrk: $(wrk --version 2>&1 | head -1 || true)"
		echo "openssl: $(openssl version)"
		echo "settings: DURATION=$DURATION ROUNDS=$ROUNDS WARMUP=$WARMUP CONNECTIONS=$CONNECTIONS THREADS=$THREADS GOMAXPROCS_LIST='$GOMAXPROCS_LIST' LOAD_CORE=$LOAD_CORE PROXY_CORE=$PROXY_CORE IDENTITY=$IDENTITY"
		echo "tls nginx: $(tls_params "$NGINX_PORT")"
		echo "tls breakwater: $(tls_params "${BWP[$FIRST_N]}")"
		echo "loadavg before: $(cat /proc/loadavg); machine busy before: ${QUIET_BUSY}%"
	} >"$OUT/env.txt"
}

# tls_params PORT: protocol and cipher negotiated by an OpenSSL client.
tls_params() {
	openssl s_client -connect "127.0.0.1:$1" -CAfile "$CA" </dev/null 2>/dev/null |
		awk '/^New, / { print } /^Server Temp Key/ { print }' | tr '\n' ';'
}

# bench/limits.sh sources this file for its helpers and runs a main of its own.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then main "$@"; fi
