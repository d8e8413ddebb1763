#!/usr/bin/env bash
# bench/limits.sh — what rate limits cost on the request path, with wrk.
#
# Three Breakwater instances, each pinned alone to PROXY_CORE (GOMAXPROCS=1),
# proxying the same upstream nginx (core LOAD_CORE) over TLS with API-key
# auth and scopes, exactly as in bench/run.sh:
#   bw-none      bench/breakwater.yaml: no limits (run.sh's Breakwater)
#   bw-embedded  bench/breakwater-limits.yaml, embedded store: three limits
#                per request (consumer rate + daily quota, per-IP rate)
#   bw-redis     the same limits in Redis (store.redis, on_unavailable: deny):
#                a redis-server on 127.0.0.1, pinned to REDIS_CORE
# measured ROUNDS times, interleaved, with run.sh's warm-up, noise checks and
# retries. The limits are far above what wrk sends: every request is
# admitted, and a single non-2xx response (a 429, or a 503 from a Redis that
# does not answer) fails the run. The figures that matter are the per-round
# ratios redis/embedded (issue 5: >= 0.7), embedded/none and redis/none.
# For bw-redis the script also counts Redis commands per request (from
# INFO commandstats: 1.0 means one round trip per request) and Redis's own CPU.
#
# Usage:  bench/limits.sh          (as root for apt-get; from anywhere)
# Knobs: every knob of bench/run.sh (DURATION, ROUNDS, WARMUP, CONNECTIONS,
# THREADS, LOAD_CORE, PROXY_CORE, QUIET_*, MAX_OTHERS_PCT, RUN_RETRIES,
# SKIP_INSTALL, IDENTITY, ports), except GOMAXPROCS_LIST and GO_BASELINE, plus:
#   REDIS_CORE=$LOAD_CORE   core of redis-server (default: the load core, as
#                           Redis runs on another machine in production; the
#                           proxy core then runs only the gateway)
#   REDIS_PORT=38637        first port tried for redis-server
#   TARGET_REDIS_RATIO=0.7  issue 5's goal for redis/embedded
#   PROFILE=1               after the rounds: a CPU profile (PROFILE_SECONDS)
#                           of each instance under the same load, from its
#                           admin listener's /debug/pprof; pprof-*.txt, and in
#                           profile-shares.txt the share of CPU in metrics,
#                           the rest of monitoring, rate limiting and Redis.
# Output: bench/results/<timestamp>-limits/ (runs.tsv, redis.tsv, summary.txt,
# env.txt, raw/) and bench/results/limits-latest -> it.
# Method and figures: docs/performance.md, "Rate limits".
set -euo pipefail

# shellcheck source=bench/run.sh
source "$(dirname "${BASH_SOURCE[0]}")/run.sh" # helpers, knobs and the exit trap

LIMITS_CONFIG=$BENCH/breakwater-limits.yaml
REDIS_CORE=${REDIS_CORE:-$LOAD_CORE}
REDIS_PORT=${REDIS_PORT:-38637}
TARGET_REDIS_RATIO=${TARGET_REDIS_RATIO:-0.7}
TARGETS=(none embedded redis)
declare -A LP=() LA=() LPID=()

# start_limited NAME CONFIG REDIS_URL: a Breakwater instance alone on PROXY_CORE.
start_limited() {
	local name=$1 config=$2 redis=$3 pid
	mkdir -p "$WORK/bwl-data-$name"
	local -a envs=(
		"BW_BENCH_HTTPS=127.0.0.1:${LP[$name]}" "BW_BENCH_ADMIN=127.0.0.1:${LA[$name]}"
		"BW_BENCH_DATA=$WORK/bwl-data-$name" "BW_BENCH_CERT=$CERT" "BW_BENCH_CERT_KEY=$CERT_KEY"
		"BW_BENCH_ADMIN_HASH=$ADMIN_HASH" "BW_BENCH_KEY_HASH=$KEY_HASH"
		"BW_BENCH_UPSTREAM=http://127.0.0.1:$UPSTREAM_PORT" "BW_BENCH_REDIS=$redis" "BW_BENCH_IDENTITY=$IDENTITY"
	)
	env "${envs[@]}" "$BW_BIN" validate -c "$config" >/dev/null || die "breakwater validate -c $config failed ($name)"
	env "${envs[@]}" GOMAXPROCS=1 setsid taskset -c "$PROXY_CORE" \
		"$BW_BIN" serve -c "$config" --access-log off --log-level warn >"$WORK/bwl-$name.log" 2>&1 &
	pid=$!
	track "$pid" breakwater
	wait_port "${LP[$name]}" "$pid" "breakwater ($name)"
	LPID[$name]=$pid
}

start_redis() {
	local dir=$WORK/redis
	rm -rf "$dir"
	mkdir -p "$dir"
	# No persistence, loopback only; the benchmark's keys expire by themselves.
	setsid taskset -c "$REDIS_CORE" redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' \
		--appendonly no --dir "$dir" --logfile "$dir/redis.log" --daemonize no >"$dir/stdout.log" 2>&1 &
	REDIS_PID=$!
	track "$REDIS_PID" redis-server
	wait_port "$REDIS_PORT" "$REDIS_PID" "redis-server"
}

rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }

# cmdstats FILE: "command calls" of every command Redis has executed so far.
# Commands that a Lua script calls (redis.call) are counted too, so the
# round trips of the gateway are the script calls (EVALSHA, EVAL, FCALL).
cmdstats() {
	rcli info commandstats | awk -F'[:=,]' '/^cmdstat_/ { sub(/^cmdstat_/, "", $1); print $1, $3 }' >"$1"
}

# measure_hook before|after LABEL: called by run.sh's measure right around
# the measured wrk run; for bw-redis, Redis's commands and CPU meanwhile.
# Sets HOOK_SCRIPTS (script calls), HOOK_CALLS (all commands, the INFO
# calls excluded), HOOK_TICKS (Redis CPU) and HOOK_T (wall, 1/100 s).
measure_hook() {
	[[ $2 == bw-redis ]] || return 0
	local f=$OUT/raw/round$ROUND-redis-commands
	if [[ $1 == before ]]; then
		cmdstats "$f.before"
		HOOK_TICKS=$(cpu_ticks "$REDIS_PID") HOOK_T=$(date +%s%N)
	else
		HOOK_TICKS=$(($(cpu_ticks "$REDIS_PID") - HOOK_TICKS)) HOOK_T=$((($(date +%s%N) - HOOK_T) / 10000000))
		cmdstats "$f.after"
		awk 'NR == FNR { a[$1] = $2; next } { d = $2 - a[$1]; if ($1 == "info") d--; if (d > 0) print $1, d }' \
			"$f.before" "$f.after" | sort -k2,2nr >"$f.txt"
		HOOK_CALLS=$(awk '{ s += $2 } END { print s + 0 }' "$f.txt")
		HOOK_SCRIPTS=$(awk '$1 ~ /^(eval|evalsha|eval_ro|evalsha_ro|fcall|fcall_ro)$/ { s += $2 } END { print s + 0 }' "$f.txt")
	fi
}

# has_header NAME URL HEADER: the response to a keyed request has HEADER.
has_header() {
	curl -sS --max-time 5 --cacert "$CA" -D - -o /dev/null -H "X-API-Key: $API_KEY" "$2" | grep -qi "^$3:"
}

# pprof_share PROFILE REGEX: % of the profile's samples with a frame matching REGEX.
pprof_share() {
	go tool pprof -top -nodecount=1000000 -nodefraction=0 -focus="$2" "$BW_BIN" "$1" 2>/dev/null |
		awk '/^Showing nodes accounting for/ { gsub(/,/, "", $6); print $6; f = 1 } END { if (!f) print "0%" }'
}

profile_targets() {
	local name url admin code secs=$PROFILE_SECONDS
	: >"$OUT/profile-shares.txt"
	for name in "${TARGETS[@]}"; do
		url="https://127.0.0.1:${LP[$name]}$REQ_PATH" admin="http://127.0.0.1:${LA[$name]}"
		code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ADMIN_TOKEN" "$admin/debug/pprof/" || true)
		if [[ $code != 200 ]]; then
			log "PROFILE=1: bw-$name's admin listener has no /debug/pprof (HTTP $code); skipped"
			continue
		fi
		log "PROFILE=1: CPU profile of bw-$name for ${secs}s under the same load"
		taskset -c "$LOAD_CORE" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$((secs + 3))s" -s "$BENCH/auth.lua" "$url" \
			>"$OUT/raw/profile-$name-wrk.txt" &
		local wrk_pid=$!
		track "$wrk_pid" wrk
		sleep 1
		curl -sS --max-time "$((secs + 10))" -H "Authorization: Bearer $ADMIN_TOKEN" \
			-o "$OUT/cpu-$name.pprof" "$admin/debug/pprof/profile?seconds=$secs"
		wait "$wrk_pid" || true
		go tool pprof -top -nodecount=60 "$BW_BIN" "$OUT/cpu-$name.pprof" >"$OUT/pprof-top-$name.txt" 2>&1 || true
		go tool pprof -top -cum -nodecount=120 "$BW_BIN" "$OUT/cpu-$name.pprof" >"$OUT/pprof-cum-$name.txt" 2>&1 || true
		{
			echo "bw-$name: share of all CPU samples (a sample counts if any frame of its stack matches)"
			printf '  %-58s %s\n' "metrics (telemetry.Metrics/Route, prometheus)" \
				"$(pprof_share "$OUT/cpu-$name.pprof" 'internal/telemetry\.\(\*(Metrics|Route)\)|prometheus')"
			printf '  %-58s %s\n' "monitoring (telemetry, dashboard, tracing, observe, logAccess)" \
				"$(pprof_share "$OUT/cpu-$name.pprof" 'internal/telemetry\.|internal/dashboard\.|internal/tracing\.|gateway\.\(\*Gateway\)\.(observe|logAccess)')"
			printf '  %-58s %s\n' "rate limits (ratelimit, gateway limits)" \
				"$(pprof_share "$OUT/cpu-$name.pprof" 'internal/ratelimit\.|gateway\.\(\*Gateway\)\.limit|gateway\.\(\*fallbackLimiter\)')"
			printf '  %-58s %s\n' "Redis client (rueidis, redisconn)" \
				"$(pprof_share "$OUT/cpu-$name.pprof" 'rueidis|internal/redisconn\.')"
			printf '  %-58s %s\n' "the proxy (proxy.Upstream.ServeHTTP, upstream I/O included)" \
				"$(pprof_share "$OUT/cpu-$name.pprof" 'internal/proxy\.\(\*Upstream\)\.ServeHTTP')"
		} >>"$OUT/profile-shares.txt"
	done
	log "profiles: $OUT/cpu-*.pprof, pprof-*.txt; shares in $OUT/profile-shares.txt"
}

# per_round A B: "r1 r2 ..." ratios of req/s of bw-A over bw-B within each round.
per_round() {
	awk -F'\t' -v a="bw-$1" -v b="bw-$2" '$2 == a { x[$1] = $3 } $2 == b { y[$1] = $3 }
		END { for (i = 1; i in x; i++) s = s sprintf("%s%.3f", (i == 1 ? "" : " "), x[i] / y[i]); print s }' "$OUT/runs.tsv"
}

# med N: the median over rounds of column N of redis.tsv.
med() { awk -F'\t' -v c="$1" 'NR > 1 { print $c }' "$OUT/redis.tsv" | median; }

summarise_limits() {
	local name rps p50 p99 cpu noise eff pair a b rounds med
	{
		echo "Rate limits on the request path — $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cd "$ROOT" && git rev-parse --short HEAD)"
		echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, keep-alive, API key; $ROUNDS interleaved rounds, $WARMUP warm-up"
		echo "X-Gateway-Identity (routes[].identity): $IDENTITY"
		echo "upstream + wrk on core $LOAD_CORE, redis-server on core $REDIS_CORE, each gateway alone on core $PROXY_CORE (GOMAXPROCS=1)"
		echo
		printf '%-12s %9s %8s %8s %6s %10s %6s %9s\n' target "req/s" "p50 ms" "p99 ms" CPU "req/CPU-s" noise "vs none"
		local none_rps
		none_rps=$(col bw-none 3)
		for name in "${TARGETS[@]}"; do
			rps=$(col "bw-$name" 3) p50=$(col "bw-$name" 4) p99=$(col "bw-$name" 5) cpu=$(col "bw-$name" 8) noise=$(col "bw-$name" 11)
			eff=$(per_cpu "$rps" "$cpu")
			printf '%-12s %9.0f %8.3f %8.3f %5.0f%% %10s %5.0f%% %8sx\n' "bw-$name" "$rps" "$(ratio "$p50" 1000 %.3f)" \
				"$(ratio "$p99" 1000 %.3f)" "$cpu" "$eff" "$noise" "$(ratio "$rps" "$none_rps" %.3f)"
		done
		echo
		echo "Ratios of req/s within each round (median over rounds first; then every round):"
		for pair in redis:embedded embedded:none redis:none; do
			a=${pair%%:*} b=${pair#*:}
			rounds=$(per_round "$a" "$b")
			med=$(tr ' ' '\n' <<<"$rounds" | median)
			printf '  %-16s %.3f   (rounds %s)\n' "$a/$b" "$med" "$rounds"
		done
		a=$(tr ' ' '\n' <<<"$(per_round redis embedded)" | median)
		if awk -v r="$a" -v t="$TARGET_REDIS_RATIO" 'BEGIN { exit !(r >= t) }'; then
			echo "  target redis/embedded >= $TARGET_REDIS_RATIO: met"
		else
			echo "  target redis/embedded >= $TARGET_REDIS_RATIO: NOT met"
		fi
		echo
		echo "Per CPU-second of the gateway (its cost per request, Redis's own CPU not included):"
		for pair in redis:embedded embedded:none; do
			a=${pair%%:*} b=${pair#*:}
			printf '  %-16s %s\n' "$a/$b" "$(ratio "$(per_cpu "$(col "bw-$a" 3)" "$(col "bw-$a" 8)")" \
				"$(per_cpu "$(col "bw-$b" 3)" "$(col "bw-$b" 8)")" %.3f)"
		done
		echo
		echo "Redis during the bw-redis runs (medians over rounds): $(med 6) script calls (round trips) and"
		echo "$(med 7) commands per request (a script's redis.call()s included; by command: raw/round*-redis-commands.txt);"
		echo "redis-server used $(med 8)% of a core, $(med 9) us of CPU per request."
		echo "noise: CPU of processes outside the benchmark during the run (% of a core)."
	} >"$OUT/summary.txt"
}

main_limits() {
	[[ $(nproc) -ge 2 ]] || die "needs at least 2 cores (LOAD_CORE and PROXY_CORE)"
	[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
	install_tools
	if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
		[[ $SKIP_INSTALL != 1 && $(id -u) == 0 ]] || die "redis-server and redis-cli are missing; install redis-server"
		log "installing redis-server"
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server
	fi
	HZ=$(getconf CLK_TCK)
	mkdir -p "$WORK"
	log "building the gateway"
	(cd "$ROOT" && go build -o bench/.work/breakwater ./cmd/breakwater)
	make_certs
	make_secrets

	local stamp
	stamp=$(date +%Y%m%d-%H%M%S)-limits
	OUT=$BENCH/results/$stamp
	mkdir -p "$OUT/raw"
	ln -sfn "$stamp" "$BENCH/results/limits-latest"

	UPSTREAM_PORT=$(pick_port "$UPSTREAM_PORT")
	NGINX_PORT=$(pick_port "$NGINX_PORT") # run.sh's nginx proxy config is written, not started
	REDIS_PORT=$(pick_port "$REDIS_PORT")
	local name p=$BW_PORT a=$BW_ADMIN_PORT
	for name in "${TARGETS[@]}"; do
		LP[$name]=$(pick_port "$p") LA[$name]=$(pick_port "$a")
		p=$((LP[$name] + 1)) a=$((LA[$name] + 1))
	done
	write_nginx_configs
	log "starting upstream nginx (core $LOAD_CORE, :$UPSTREAM_PORT) and redis-server (core $REDIS_CORE, :$REDIS_PORT)"
	start_nginx nginx-upstream "$LOAD_CORE" "$UPSTREAM_PORT"
	UPSTREAM_PIDS=$STARTED_PIDS
	start_redis
	log "starting breakwater: none :${LP[none]}, embedded :${LP[embedded]}, redis :${LP[redis]} (core $PROXY_CORE)"
	start_limited none "$CONFIG" ""
	start_limited embedded "$LIMITS_CONFIG" ""
	start_limited redis "$LIMITS_CONFIG" "redis://127.0.0.1:$REDIS_PORT/0"

	# Checks: all serve the body with the key and refuse without; the limited
	# ones send RateLimit headers, and bw-redis really keeps its state in Redis.
	for name in "${TARGETS[@]}"; do
		local url="https://127.0.0.1:${LP[$name]}$REQ_PATH"
		check_target "bw-$name" "$url" -H "X-API-Key: $API_KEY"
		expect_status "bw-$name without key" 401 "$url"
		if [[ $name == none ]]; then
			! has_header "$name" "$url" RateLimit-Policy || die "bw-none sends RateLimit-Policy: it has limits"
		else
			has_header "$name" "$url" RateLimit-Policy || die "bw-$name sends no RateLimit-Policy: its limits are not applied"
		fi
	done
	local keys
	keys=$(rcli dbsize)
	[[ $keys -ge 1 ]] || die "Redis holds no keys after requests to bw-redis: its limits are not in Redis"
	rcli --scan >"$OUT/redis-keys.txt"
	log "checks passed: 200 with the body, 401 without a key, RateLimit headers on the limited ones, $keys keys in Redis"

	wait_quiet
	{
		echo "date: $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
		echo "host: $(uname -srm); $(nproc) cores; $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
		echo "go: $(go version)"
		echo "git: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo none)$(cd "$ROOT" && [[ -n $(git status --porcelain -- . ':!bench' 2>/dev/null) ]] && echo ' (uncommitted changes outside bench/)')"
		echo "redis: $(redis-server --version)"
		echo "wrk: $(wrk --version 2>&1 | head -1 || true)"
		echo "settings: DURATION=$DURATION ROUNDS=$ROUNDS WARMUP=$WARMUP CONNECTIONS=$CONNECTIONS THREADS=$THREADS LOAD_CORE=$LOAD_CORE PROXY_CORE=$PROXY_CORE REDIS_CORE=$REDIS_CORE IDENTITY=$IDENTITY"
		echo "loadavg before: $(cat /proc/loadavg); machine busy before: ${QUIET_BUSY}%"
	} >"$OUT/env.txt"
	export BW_BENCH_API_KEY=$API_KEY # read by auth.lua

	printf 'round\ttarget\trps\tp50_us\tp99_us\tnon2xx\tsocket_errors\tserver_cpu_pct\tcore%s_pct\tcore%s_pct\tnoise_pct\tattempts\tsteal_pct\n' \
		"$LOAD_CORE" "$PROXY_CORE" >"$OUT/runs.tsv"
	printf 'round\tscript_calls\tcommands\trequests\twall_cs\tscript_calls_per_request\tcommands_per_request\tredis_cpu_pct\tredis_cpu_us_per_request\n' >"$OUT/redis.tsv"
	log "measuring: $ROUNDS rounds of bw-none, bw-embedded, bw-redis, $DURATION each (+$WARMUP warm-up)"
	local reqs
	for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
		for name in "${TARGETS[@]}"; do
			measure "bw-$name" "https://127.0.0.1:${LP[$name]}$REQ_PATH" "${LPID[$name]}" 1 "$BENCH/auth.lua"
		done
		reqs=$(awk '/ requests in / { print $1 }' "$OUT/raw/round$ROUND-bw-redis.txt")
		awk -v r="$ROUND" -v sc="$HOOK_SCRIPTS" -v c="$HOOK_CALLS" -v n="$reqs" -v w="$HOOK_T" -v t="$HOOK_TICKS" -v hz="$HZ" 'BEGIN {
			printf "%s\t%d\t%d\t%d\t%d\t%.3f\t%.3f\t%.0f\t%.1f\n", r, sc, c, n, w, sc / n, c / n, t * 100 / hz * 100 / w, t / hz * 1e6 / n }' >>"$OUT/redis.tsv"
	done
	echo "loadavg after: $(cat /proc/loadavg)" >>"$OUT/env.txt"
	summarise_limits
	if [[ $PROFILE == 1 ]]; then profile_targets; fi
	echo
	cat "$OUT/summary.txt"
	if [[ -s $OUT/profile-shares.txt ]]; then
		echo
		cat "$OUT/profile-shares.txt"
	fi
	echo
	log "results in $OUT"
}

main_limits "$@"
