#!/usr/bin/env bash
# The proxy example against direct connections and HAProxy 2.6, in one run on this machine:
# three mosquitto brokers on loopback, the proxy and HAProxy in front of them (both balancing on
# the client id), and the loadgen example measuring each in turn.
#
#   bash benches/proxy.sh [rate|memory|relay|tls|cpu|storm|profile|instructions|segments]
#
# All but tls, cpu, storm, profile, instructions and segments by default; installs mosquitto,
# haproxy and openssl if missing.
#
# Every row carries the target's CPU time per connection, user and system apart, read from
# /proc/PID/stat over the run, so that the proxy's cost reads as a ratio to HAProxy's from the
# same run. With more than one round, a second table gives each target's ratios to HAProxy
# round by round (the median of the ratios taken within each round), which a load on the
# machine that comes and goes between rounds moves less than the ratio of two median rounds.
# Both proxies log nothing per connection: HAProxy's config below has no `log` line, and the
# proxy runs with RUST_LOG=warn (PROXY_ENV="RUST_LOG=info" to log both; then give HAProxy a
# `log` line too).
#
# cpu: 64 clients at a time doing CONNECT -> CONNACK -> close, 20,000 connections a round (CPU_CONNECTIONS),
# six rounds (CPU_ROUNDS), each printed, then the medians; with the floors (forwarders that only
# move bytes: on tokio, straight on epoll, and on io_uring waking for one completion or for a
# batch) as four more targets. The loadgen changes the order each round (a Williams square), so
# that with an even number of targets each follows each other once in as many rounds, and with
# an odd number twice in twice as many: the one after `direct` pays for the sockets it left in
# TIME_WAIT.
# storm: 5,000 clients connecting at once, for p99 and errors.
# profile: perf and strace -c on each proxy in turn, under the cpu load (needs perf, strace); the
# perf samples are also split by system call (benches/syscalls.awk) into µs per connection.
# instructions: the proxy's, the floor's and the epoll floor's user-space instructions per
# connection, by callgrind (valgrind), which counts the same on a busy machine.
# segments: TCP segments per connection, each target alone, from the kernel's counters (nstat),
# which also count the same on a busy machine.
#
# BASELINE=PATH adds another proxy build beside this one (plain TCP targets only; its own flags
# in BASELINE_ARGS), for a before-and-after in one run.
#
# tls: both proxies terminate TLS with the same ECDSA P-256 certificate (made here with
# openssl), in front of the same brokers; the load generator speaks TLS 1.3 without
# resumption, so each connection is a full handshake, and measures handshakes per second to
# CONNACK, then memory per idle TLS connection.
#
# Short and bounded: a few thousand connections per target, loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

base=${PORT_BASE:-18840}
proxy_port=$((base + 10))
haproxy_port=$((base + 20))
proxy_tls_port=$((base + 11))
haproxy_tls_port=$((base + 21))
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

if ! command -v mosquitto >/dev/null || ! command -v haproxy >/dev/null || ! command -v openssl >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto haproxy openssl >/dev/null
fi
# One ECDSA P-256 server certificate for both proxies, from a throwaway CA.
tls_args=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
openssl req -x509 "${tls_args[@]}" -keyout "$work/ca.key" -out "$work/ca.pem" -days 1 -subj /CN=bench-ca \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl req "${tls_args[@]}" -keyout "$work/server.key" -out "$work/server.csr" -subj /CN=localhost 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$work/server.ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -days 1 \
    -extfile "$work/server.ext" -out "$work/server.pem" 2>/dev/null
cat "$work/server.pem" "$work/server.key" >"$work/haproxy.pem"
cargo build --quiet --release --example proxy --example loadgen --example floor --example floor_epoll

wait_port() {
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
    return 1
}

upstreams=()
servers=""
for n in 1 2 3; do
    port=$((base + n))
    printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\nmax_connections -1\n' \
        "$port" >"$work/broker$n.conf"
    mosquitto -c "$work/broker$n.conf" >/dev/null 2>&1 &
    pids+=("$!")
    wait_port "$port"
    upstreams+=(--upstream "127.0.0.1:$port")
    servers+="    server b$n 127.0.0.1:$port"$'\n'
done

# PROXY_ARGS: more flags for the proxy, e.g. "--metrics 127.0.0.1:PORT" to measure with metrics served.
# PROXY_ENV: NAME=VALUE words for its environment, after the default RUST_LOG=warn.
# shellcheck disable=SC2086
env RUST_LOG=warn ${PROXY_ENV:-} target/release/examples/proxy --listen "127.0.0.1:$proxy_port" "${upstreams[@]}" \
    --tls-listen "127.0.0.1:$proxy_tls_port" --tls-cert "$work/server.pem" --tls-key "$work/server.key" \
    ${PROXY_ARGS:-} 2>"$work/proxy.log" &
proxy_pid=$!
pids+=("$proxy_pid")
# BASELINE: another build of the proxy (e.g. from a worktree of an earlier commit), run beside
# this one (its flags in BASELINE_ARGS), so that a change is measured against it in one run.
baseline_target=()
if [[ -n ${BASELINE:-} ]]; then
    # shellcheck disable=SC2086
    env RUST_LOG=warn ${PROXY_ENV:-} "$BASELINE" --listen "127.0.0.1:$((base + 12))" "${upstreams[@]}" ${BASELINE_ARGS:-} \
        2>"$work/baseline.log" &
    pids+=("$!")
    baseline_target=(--target "baseline=127.0.0.1:$((base + 12)),$!")
fi

# HAProxy's one-line `balance hash req.payload(0,0),mqtt_field_value(...)` silently falls back
# to round robin; capture the id in a variable first, then hash that.
cat >"$work/haproxy.cfg" <<EOF
global
    maxconn 9000
defaults
    mode tcp
    timeout connect 3s
    timeout client 1h
    timeout server 1h
frontend mqtt
    bind 127.0.0.1:$haproxy_port
    tcp-request inspect-delay 10s
    tcp-request content reject unless { req.payload(0,0),mqtt_is_valid }
    tcp-request content set-var(sess.cid) req.payload(0,0),mqtt_field_value(connect,client_identifier)
    default_backend brokers
frontend mqtt_tls
    bind 127.0.0.1:$haproxy_tls_port ssl crt $work/haproxy.pem
    tcp-request inspect-delay 10s
    tcp-request content reject unless { req.payload(0,0),mqtt_is_valid }
    tcp-request content set-var(sess.cid) req.payload(0,0),mqtt_field_value(connect,client_identifier)
    default_backend brokers
backend brokers
    balance hash var(sess.cid)
    hash-type consistent
$servers
EOF
haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
haproxy_pid=$!
pids+=("$haproxy_pid")
wait_port "$proxy_port"
wait_port "$haproxy_port" || { cat "$work/haproxy.log" "$work/proxy.log"; exit 1; }

loadgen() {
    target/release/examples/loadgen --target "direct=127.0.0.1:$((base + 1)),${pids[0]}" \
        --target "proxy=127.0.0.1:$proxy_port,$proxy_pid" "${baseline_target[@]}" \
        --target "haproxy=127.0.0.1:$haproxy_port,$haproxy_pid" --reference haproxy "$@"
    echo
}

tls_loadgen() {
    target/release/examples/loadgen --tls-ca "$work/ca.pem" --tls-name localhost \
        --target "proxy=127.0.0.1:$proxy_tls_port,$proxy_pid" --target "haproxy=127.0.0.1:$haproxy_tls_port,$haproxy_pid" \
        --reference haproxy "$@"
    echo
}

section=${1:-all}
if [[ $section == tls ]]; then
    wait_port "$proxy_tls_port"
    wait_port "$haproxy_tls_port" || { cat "$work/haproxy.log"; exit 1; }
    echo "## memory per idle TLS connection"
    tls_loadgen --connections 2000 --concurrency 2000 --hold-ms 2000 --protocol 4
    echo "## TLS 1.3 handshakes to CONNACK"
    tls_loadgen --connections 2000 --concurrency 50 --protocol 4 --rounds 5
fi
# Memory first, on fresh processes: the heap that later runs leave behind would hide growth.
# HELD: connections held open at once (3,000 by default).
if [[ $section == all || $section == memory ]]; then
    echo "## memory per idle connection"
    loadgen --connections "${HELD:-3000}" --concurrency "${HELD:-3000}" --hold-ms 2000 --protocol 4
fi
if [[ $section == all || $section == rate ]]; then
    echo "## connection rate"
    loadgen --connections 3000 --concurrency 50 --protocol 4 --rounds 5
    loadgen --connections 3000 --concurrency 50 --protocol 5 --rounds 5
fi
if [[ $section == cpu ]]; then
    # The floors beside them: forwarders that do nothing but move the bytes, one on the proxy's
    # runtime, so that what the proxy's own work costs reads as its distance from it, and one
    # straight on epoll, the least any proxy in user space can cost here.
    floors=()
    for floor in "floor floor 13" "floor_epoll epoll_floor 14"; do
        read -r example name offset <<<"$floor"
        target/release/examples/"$example" --listen "127.0.0.1:$((base + offset))" "${upstreams[@]}" &
        pids+=("$!")
        wait_port "$((base + offset))"
        floors+=(--target "$name=127.0.0.1:$((base + offset)),$!")
    done
    # The epoll floor on io_uring (benches/uring-floor, its own crate): no readiness events, one
    # system call a wake-up; waking on the first completion, as the epoll floor does, then
    # waiting up to 200 µs for 16.
    cargo build --quiet --release --manifest-path benches/uring-floor/Cargo.toml
    for floor in "uring_floor 15" "uring_batched 16 --wait-for 16 --min-wait-us 200"; do
        read -r name offset flags <<<"$floor"
        # shellcheck disable=SC2086
        benches/uring-floor/target/release/mqtt-connect-uring-floor --listen "127.0.0.1:$((base + offset))" \
            "${upstreams[@]}" $flags &
        pids+=("$!")
        # Where io_uring is turned off (kernel.io_uring_disabled, a container's seccomp), without it.
        if wait_port "$((base + offset))"; then
            floors+=(--target "$name=127.0.0.1:$((base + offset)),$!")
        else
            echo "$name: not started; is io_uring available here?" >&2
        fi
    done
    echo "## CPU per connection: CONNECT -> CONNACK -> close"
    loadgen --connections "${CPU_CONNECTIONS:-20000}" --concurrency 64 --protocol "${PROTOCOL:-4}" \
        --rounds "${CPU_ROUNDS:-6}" "${floors[@]}"
fi
if [[ $section == storm ]]; then
    echo "## connection storm: 5,000 clients at once"
    loadgen --connections 5000 --concurrency 5000 --protocol 4 --rounds 3
fi
if [[ $section == profile ]]; then
    # Each proxy alone under load, first sampled by perf (cpu-clock: no hardware counters on
    # this VM; needs kernel.perf_event_paranoid <= 0 for kernel symbols), then with its system
    # calls counted by strace, which slows it, so the counts are read per connection only.
    for target in "proxy $proxy_port $proxy_pid" "haproxy $haproxy_port $haproxy_pid"; do
        read -r name port pid <<<"$target"
        # Its CPU per connection unsampled first (perf's call chains inflate it), for the shares
        # below in microseconds.
        cpu=$(target/release/examples/loadgen --target "$name=127.0.0.1:$port,$pid" --connections 20000 --concurrency 64 |
            awk -F'|' -v name="$name" '$2 ~ "^ " name " $" { sub(/ µs/, "", $10); print $10 + 0 }')
        perf record -q -e cpu-clock -g -p "$pid" -o "$work/$name.perf" 2>/dev/null &
        sampler=$!
        sleep 0.5
        target/release/examples/loadgen --target "$name=127.0.0.1:$port,$pid" --connections 20000 --concurrency 64 >/dev/null
        kill -INT "$sampler"
        wait "$sampler" || true
        echo "## $name: by system call, with the kernel's work inside it (share of samples; µs of its $cpu µs a connection unsampled)"
        perf script -i "$work/$name.perf" -F ip,sym 2>/dev/null | awk -v cpu="$cpu" -f benches/syscalls.awk | sort -rn | sed -n 1,16p
        echo "## $name: where its CPU goes (perf, self time, by object, then top 25 symbols)"
        perf report -i "$work/$name.perf" --no-children --sort dso --stdio 2>/dev/null |
            grep -E '^ +[0-9]' | sed -n 1,6p
        perf report -i "$work/$name.perf" --no-children --sort dso,sym --stdio 2>/dev/null |
            grep -E '^ +[0-9]' | sed -n 1,25p
        echo "## $name: its own code and libc's, top 15 (percent of all its samples)"
        perf report -i "$work/$name.perf" --no-children --dsos "$name,libc.so.6" --sort sym --stdio 2>/dev/null |
            grep -E '^ +[0-9]' | sed -n 1,15p
        strace -c -f -p "$pid" -o "$work/$name.strace" &
        tracer=$!
        sleep 0.5
        target/release/examples/loadgen --target "$name=127.0.0.1:$port" --connections 2000 --concurrency 64 >/dev/null
        kill -TERM "$tracer"
        wait "$tracer" || true
        echo "## $name: system calls for 2,000 connections (strace -c -f)"
        cat "$work/$name.strace"
        echo
    done
fi
if [[ $section == segments ]]; then
    # Every segment sent on the machine over 4,000 connections of each target alone: the
    # client's, the broker's and, through a proxy, the proxy's. Exact as long as nothing else
    # on the machine speaks TCP meanwhile.
    command -v nstat >/dev/null || { apt-get update -qq && apt-get install -y -qq iproute2 >/dev/null; }
    echo "## TCP segments per connection (nstat), each target alone, --protocol ${PROTOCOL:-4}"
    for target in "direct $((base + 1))" "proxy $proxy_port" "haproxy $haproxy_port"; do
        read -r name port <<<"$target"
        nstat -n
        target/release/examples/loadgen --target "$name=127.0.0.1:$port" --connections 4000 --concurrency 64 \
            --protocol "${PROTOCOL:-4}" >/dev/null
        nstat -z TcpOutSegs TcpExtTCPOrigDataSent | awk -v name="$name" '
            { count[$1] = $2 / 4000 }
            END { printf "%s: %.2f segments, %.2f of them carrying data or a FIN\n", name, count["TcpOutSegs"], count["TcpExtTCPOrigDataSent"] }'
    done
fi
if [[ $section == instructions ]]; then
    # User-space instructions per connection, counted by callgrind: repeatable where times on
    # this shared VM are not, and blind to the kernel, which the `cpu` rows carry. Each
    # forwarder runs alone under valgrind twice, for 200 and for 2,200 connections (16 at a
    # time); the difference over 2,000 leaves start-up and shutdown out. valgrind counts each
    # byte of a `rep stosb` as an instruction, so glibc's memset of a large buffer, which the
    # floors' zeroed copy buffers take, is shown apart. Then the top symbols of the longer run.
    command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
    port=$((base + 30))
    # Prints the run's total instructions and memset's.
    counted() {
        env RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$work/$1.$2.cg" \
            "target/release/examples/$1" --listen "127.0.0.1:$port" "${upstreams[@]}" 2>"$work/$1.vg" &
        local pid=$!
        # valgrind takes seconds to start a program.
        for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done
        target/release/examples/loadgen --target "$1=127.0.0.1:$port" --connections "$2" --concurrency 16 |
            awk -F'|' -v n="$2" '$2 ~ /^ [a-z_]+ $/ && $6 + 0 > 0 { print "  " $6 + 0 " errors in " n " connections" }'
        kill -TERM "$pid"
        wait "$pid" || true
        callgrind_annotate "$work/$1.$2.cg" 2>/dev/null | awk '
            /PROGRAM TOTALS/ { gsub(",", "", $1); total = $1 }
            /memset/ && /^ *[0-9,]+ \(/ { gsub(",", "", $1); memset += $1 }
            END { print total + 0, memset + 0 }' >"$work/$1.$2.count"
    }
    echo "## user-space instructions per connection (callgrind, 2,000 connections)"
    for example in proxy floor floor_epoll; do
        counted "$example" 200
        counted "$example" 2200
        read -r short short_memset <"$work/$example.200.count"
        read -r long long_memset <"$work/$example.2200.count"
        memset=$(((long_memset - short_memset) / 2000))
        echo "$example: $(((long - short) / 2000)) instructions a connection, of which memset $((memset > 0 ? memset : 0))"
        callgrind_annotate "$work/$example.2200.cg" 2>/dev/null | grep -E '^ *[0-9,]+ \(' | sed -n 2,13p
    done
fi
if [[ $section == all || $section == relay ]]; then
    echo "## relay throughput, one connection to one broker"
    loadgen --connections 1 --concurrency 1 --publishes 200000 --payload 256 --protocol 4 --rounds 5
fi
