#!/usr/bin/env bash
# The proxy example in operation, against real mosquitto brokers and clients: quiet connections
# are closed on time, descriptors running out is answered "busy" without marking brokers down,
# and a second signal ends the drain.
#
#   bash tests/interop_ops.sh    # from the repository root; installs what it needs with apt
#
# Ports: brokers on BASE+1..BASE+3, a black hole on BASE+5, proxies on BASE+10.. (BASE=18900
# unless PORT_BASE is set).
set -euo pipefail
cd "$(dirname "$0")/.."

base=${PORT_BASE:-18900}
source tests/interop_lib.sh
need prlimit=util-linux

for n in 1 2 3; do start_broker "$n" "max_connections -1"; done
upstreams=(--upstream "127.0.0.1:$((base + 1))" --upstream "127.0.0.1:$((base + 2))" --upstream "127.0.0.1:$((base + 3))")

start_proxy() { # start_proxy NAME PORT ARGS...: runs the proxy, its log in $work/NAME.log
    local name=$1 port=$2
    shift 2
    "$@" --listen "127.0.0.1:$port" >"$work/$name.log" 2>&1 &
    pids+=("$!")
    proxy_pid=$!
    wait_port "$port"
}

echo "# Keep Alive: a silent client is closed after 1.5x its Keep Alive, a pinging one stays"
start_proxy keepalive $((base + 10)) "$proxy_bin" "${upstreams[@]}"
port=$((base + 10))
# mosquitto_sub takes no Keep Alive under 5 s, so the pinger is a raw client too: CONNECT with
# Keep Alive 2, then PINGREQ every second for 6 s; prints the PINGRESPs it got.
python3 - "$port" >"$work/pinger" <<'EOF' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"\x10\x12\x00\x04MQTT\x04\x02\x00\x02\x00\x06pinger")
s.settimeout(5)
s.recv(4)
pongs = 0
for _ in range(6):
    time.sleep(1)
    s.sendall(b"\xc0\x00")
    pongs += s.recv(2) == b"\xd0\x00"
print(pongs)
EOF
pinger=$!
# A raw client: CONNECT (3.1.1, Keep Alive 2, id "silent"), then nothing; prints the seconds
# from its CONNACK until the proxy closes it.
silent=$(python3 - "$port" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"\x10\x12\x00\x04MQTT\x04\x02\x00\x02\x00\x06silent")
ack = s.recv(4)
start = time.monotonic()
s.settimeout(10)
try:
    while s.recv(100):
        pass
except OSError:
    pass
print(f"{ack.hex()} {time.monotonic() - start:.1f}")
EOF
)
read -r silent_ack silent_took <<<"$silent"
check "the silent client was accepted" "20020000" "$silent_ack"
if awk -v t="$silent_took" 'BEGIN { exit !(t >= 2.5 && t <= 4.0) }'; then
    ok "the silent client was closed after ${silent_took} s (limit 3 s)"
else
    not_ok "the silent client was closed after ${silent_took} s, not within 3 s plus slack"
fi
if grep -q 'client_id=silent.*end=idle' "$work/keepalive.log"; then ok "the proxy logged the idle close"; else not_ok "no idle log line for the silent client"; fi
wait "$pinger" || true
check "the pinging client got all 6 PINGRESPs over 6 s" "6" "$(cat "$work/pinger")"

echo "# Half-closed: clients that leave a broker that never answers are freed"
python3 - "$((base + 5))" <<'EOF' &
import socket, sys, time
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1])))
l.listen(1024)  # accepted by the kernel, never answered, never closed
held = []
while True:
    c, _ = l.accept()
    held.append(c)
EOF
pids+=("$!")
wait_port $((base + 5))
start_proxy halfclosed $((base + 11)) "$proxy_bin" --upstream "127.0.0.1:$((base + 5))" --half-closed-timeout-ms 1000
halfclosed_pid=$proxy_pid
baseline=$(ls /proc/"$halfclosed_pid"/fd | wc -l)
for i in $(seq 20); do
    timeout 1 mosquitto_sub -p $((base + 11)) -i "leaver$i" -t x >/dev/null 2>&1 &
done
sleep 0.8
during=$(ls /proc/"$halfclosed_pid"/fd | wc -l)
sleep 2.5
after=$(ls /proc/"$halfclosed_pid"/fd | wc -l)
echo "  proxy descriptors: $baseline before, $during with 20 clients, $after after they left"
check "the descriptors of 20 clients that left are freed" "$baseline" "$after"
check "all 20 logged as half-closed" "20" "$(grep -c 'client_id=leaver.*end=half-closed' "$work/halfclosed.log")"

echo "# Descriptors: the default cap is sized from the limit, and clients past it are told busy"
# 64 descriptors: the default cap is (64 - open - 16 - 8) / 2 sessions, with about 21 open at
# start on 2 CPUs (listeners, the runtimes' event loops, stdio), so 9; the log line names it.
start_proxy cap $((base + 12)) prlimit --nofile=64:64 "$proxy_bin" "${upstreams[@]}"
cap=$(grep -m1 -o 'connection cap max_connections=[0-9]*' "$work/cap.log" | sed 's/.*max_connections=//')
echo "  $(grep -m1 ' descriptors=64 open=' "$work/cap.log" | sed 's/.*INFO //') max_connections=$cap"
client_pids=()
clients() { # clients PORT N PREFIX: N clients that hold on; their outputs in $work/PREFIX*
    for i in $(seq "$2"); do
        mosquitto_sub -p "$1" -V mqttv311 -i "$3$i" -t whoami -C 2 -W 6 >"$work/$3$i" 2>&1 &
        client_pids+=("$!")
    done
    sleep 2
}
outcome() { # outcome PREFIX N: how many got a broker's message, were refused, or hung
    local served=0 refused=0 hung=0
    for i in $(seq "$2"); do
        if grep -q '^broker' "$work/$1$i"; then served=$((served + 1))
        elif grep -qi 'refused\|unavailable' "$work/$1$i"; then refused=$((refused + 1))
        else hung=$((hung + 1)); fi
    done
    echo "$served served, $refused refused, $hung hung"
}
if [[ ${cap:-0} -ge 1 && $cap -le 15 ]]; then ok "the cap sized from 64 descriptors: $cap"; else not_ok "no cap between 1 and 15 logged: '$cap'"; fi
clients $((base + 12)) 20 capped
check "$cap served, $((20 - cap)) told busy, none hung" "$cap served, $((20 - cap)) refused, 0 hung" "$(outcome capped 20)"

echo "# Descriptors: a cap past them is lowered to fit, so a flood is answered busy and marks no broker down"
start_proxy fds $((base + 13)) prlimit --nofile=64:64 "$proxy_bin" "${upstreams[@]}" --max-connections 1000 --down-for-ms 60000
check "the cap of 1000 was lowered to the $cap that 64 descriptors allow" "1" \
    "$(grep -c "lowered to fit it max_connections=1000 in_force=$cap\$" "$work/fds.log" || true)"
clients $((base + 13)) 40 flood
check "$cap served, $((40 - cap)) told busy, none hung" "$cap served, $((40 - cap)) refused, 0 hung" "$(outcome flood 40)"
check "no broker marked down" "0" "$(grep -c 'marked down' "$work/fds.log" || true)"
for pid in "${client_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
sleep 0.5
after=$(mosquitto_sub -p $((base + 13)) -i after-flood -t whoami -C 1 -W 5 2>&1 || true)
check "after the flood a client reaches its broker" "broker" "${after:0:6}"
[[ ${after:0:6} == broker ]] || { echo "  $after"; grep -v " INFO " "$work/fds.log" | tail; ls -l /proc/"$proxy_pid"/fd; }

echo "# Logs: RUST_LOG and --log-level are honoured, JSON on request, client ids escaped"
logs_port=$((base + 15))
RUST_LOG=warn start_proxy rustlog "$logs_port" "$proxy_bin" "${upstreams[@]}"
quiet=$(mosquitto_sub -p "$logs_port" -i quiet-please -t whoami -C 1 -W 5 2>/dev/null || true)
kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true
check "RUST_LOG=warn: the client served" "broker" "${quiet:0:6}"
check "RUST_LOG=warn: no connection line" "0" "$(grep -c 'quiet-please' "$work/rustlog.log" || true)"
RUST_LOG=warn start_proxy loglevel "$logs_port" "$proxy_bin" "${upstreams[@]}" --log-level info --log-format json \
    --max-connect-size 70000
# A client id holding a newline, an ESC sequence and a forged line.
python3 - "$logs_port" <<'EOF'
import socket, sys
cid = "evil\n2099-01-01 INFO peer=6.6.6.6\x1b[2J".encode() + b"A" * 60000
body = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(cid).to_bytes(2, "big") + cid
n, rl = len(body), b""
while True:
    b, n = n % 128, n // 128
    rl += bytes([b | (0x80 if n else 0)])
    if not n: break
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"\x10" + rl + body)
s.settimeout(5)
s.recv(4)
s.close()
EOF
sleep 0.5
kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true
evil=$(python3 - "$work/loglevel.log" <<'EOF'
import json, sys
lines = [l for l in open(sys.argv[1], encoding="utf-8") if "evil" in l]
fields = json.loads(lines[0])["fields"]
sent = "evil\n2099-01-01 INFO peer=6.6.6.6\x1b[2J" + "A" * 60000
# JSON escapes the id itself: its first 128 characters come back as sent, then the cut.
print(len(lines), "\x1b" in lines[0], len(lines[0]) < 1024, fields["client_id"] == sent[:128] + "…(+59909 bytes)")
EOF
)
check "--log-level info over RUST_LOG=warn, JSON: one line, no ESC, short, the id as sent and cut" \
    '1 False True True' "$evil"

echo "# Connection rate: a burst from one address gets 0x9F past its limit, another address is served"
rate_port=$((base + 16))
start_proxy rate "$rate_port" "$proxy_bin" "${upstreams[@]}" --max-connects-per-s 2 --connect-burst 5
rate_codes() { # rate_codes SOURCE N VERSION: the CONNACK codes N quick connections from SOURCE get
    python3 - "$rate_port" "$1" "$2" "$3" <<'EOF'
import socket, sys
port, source, n, version = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
connect = b"\x10\x11\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x04rate" if version == 5 else \
    b"\x10\x10\x00\x04MQTT\x04\x02\x00\x3c\x00\x04rate"
# All connected first, answers read after: the burst takes milliseconds, so the bucket's refill
# (2 a second) cannot slip a token in between, however slowly the answers come on a busy machine.
sockets = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port), source_address=(source, 0))
    s.sendall(connect)
    sockets.append(s)
codes = []
for s in sockets:
    s.settimeout(5)
    ack = s.recv(5)
    codes.append(f"{ack[3]:02x}" if len(ack) >= 4 else "closed")
    s.close()
print(" ".join(codes))
EOF
}
wait_port "$rate_port"  # the probe took a token; let the bucket refill
sleep 1
codes=$(rate_codes 127.0.0.1 8 5)
echo "  8 from 127.0.0.1 (5.0): $codes"
# Which 5 get the tokens is the order the workers accept them in, not the order they connected:
# each worker takes its own share of the burst from its own socket.
sorted=$(tr ' ' '\n' <<<"$codes" | sort | paste -sd ' ')
check "5 served, the other 3 refused with 0x9F" "00 00 00 00 00 9f 9f 9f" "$sorted"
check "3.1.1 from 127.0.0.1 past the limit: 0x03" "03" "$(rate_codes 127.0.0.1 1 4)"
check "127.0.0.2 is served meanwhile" "00 00" "$(rate_codes 127.0.0.2 2 5)"

echo "# Metrics: scraped after known traffic, counters asserted, promtool check metrics"
if ! command -v promtool >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
fi
metrics_port=$((base + 17))
cat >"$work/metrics.toml" <<EOF
listen = ["127.0.0.1:$((base + 18))"]
metrics = "127.0.0.1:$metrics_port"
[[route]]
name = "all"
upstreams = ["127.0.0.1:$((base + 1))", "127.0.0.1:$((base + 2))", "127.0.0.1:$((base + 3))"]
EOF
"$proxy_bin" --config "$work/metrics.toml" >"$work/metrics.log" 2>&1 &
metrics_pid=$!
pids+=("$metrics_pid")
wait_port $((base + 18))
wait_port "$metrics_port"
for id in ma mb mc; do mosquitto_sub -p $((base + 18)) -i "$id" -t whoami -C 1 -W 5 >/dev/null; done
(exec 3<>"/dev/tcp/127.0.0.1/$((base + 18))"; printf '\x10\x0d\x00\x04MQTT\x05\x03\x00\x3c\x00\x00\x00' >&3; timeout 5 cat <&3 >/dev/null) || true
# The same client id from 127.0.0.1, then from 127.0.0.2 while the first is still connected.
python3 - $((base + 18)) <<'EOF'
import socket, sys, time
connect = b"\x10\x0f\x00\x04MQTT\x04\x02\x00\x3c\x00\x03dup"
held = []
for source in ("127.0.0.1", "127.0.0.2"):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), source_address=(source, 0))
    s.sendall(connect)
    s.settimeout(5)
    s.recv(4)
    held.append(s)
time.sleep(0.3)
EOF
kill -HUP "$metrics_pid"
sleep 0.3
echo 'route = "broken' >>"$work/metrics.toml"
kill -HUP "$metrics_pid"
sleep 0.5
curl -s "http://127.0.0.1:$metrics_port/metrics" >"$work/scrape"
value() { # value NAME LABEL-SUBSTRING...: the sum of the series of NAME whose labels hold them all
    python3 - "$work/scrape" "$@" <<'EOF'
import sys
path, name, wanted = sys.argv[1], sys.argv[2], sys.argv[3:]
total = 0.0
for line in open(path):
    if line.startswith("#"):
        continue
    series, _, value = line.rpartition(" ")
    metric, _, labels = series.partition("{")
    if metric == name and all(w in labels for w in wanted):
        total += float(value)
print(f"{total:g}")
EOF
}
check "accepted: 1 port probe, 3 clients, 1 invalid, 2 dup" "7" "$(value mqtt_proxy_connections_accepted_total)"
check "active: none" "0" "$(value mqtt_proxy_connections_active)"
closed=$(($(value mqtt_proxy_connections_ended_total 'how="client_closed"') + $(value mqtt_proxy_connections_ended_total 'how="upstream_closed"')))
check "the 5 relayed ended by a close, client's or broker's" "5" "$closed"
check "1 refused as invalid with 0x81" "1" "$(value mqtt_proxy_connections_ended_total 'how="refused"' 'why="invalid"' 'code="0x81"')"
check "1 closed before a whole CONNECT (the port probe)" "1" "$(value mqtt_proxy_connections_ended_total 'how="closed_before_connect"')"
check "5 relayed on route all" "5" "$(value mqtt_proxy_route_connections_total 'route="all"')"
check "5 CONNACK 0x00 from the brokers" "5" "$(value mqtt_proxy_broker_connacks_total 'code="0x00"')"
check "CONNECT read times: 5 (the whole CONNECTs: not the probe's, nor the invalid one's)" "5" "$(value mqtt_proxy_connect_read_seconds_count)"
check "upstream connect times: 5" "5" "$(value mqtt_proxy_upstream_connect_seconds_count)"
check "one client-id takeover" "1" "$(value mqtt_proxy_client_id_takeovers_total)"
check "reloads: 1 ok" "1" "$(value mqtt_proxy_reloads_total 'result="ok"')"
check "reloads: 1 refused" "1" "$(value mqtt_proxy_reloads_total 'result="refused"')"
check "takeover logged once, naming the id" "1" "$(grep -c 'client id takeover.*client_id=dup' "$work/metrics.log" || true)"
if promtool check metrics <"$work/scrape"; then ok "promtool check metrics"; else not_ok "promtool check metrics"; fi
echo "  the scrape, histogram buckets left out:"
grep -v '_bucket{' "$work/scrape" | grep -v '^#' | sed 's/^/    /'
[[ -n ${SCRAPE_OUT:-} ]] && cp "$work/scrape" "$SCRAPE_OUT"

echo "# Health checks: a stopped broker is marked down before any client goes there, up when back"
hc_port=$((base + 19))
hc_metrics=$((base + 20))
cat >"$work/hc.toml" <<EOF
listen = ["127.0.0.1:$hc_port"]
metrics = "127.0.0.1:$hc_metrics"
[[route]]
name = "checked"
upstreams = ["127.0.0.1:$((base + 1))", "127.0.0.1:$((base + 2))", "127.0.0.1:$((base + 3))"]
[route.health_check]
interval_ms = 300
timeout_ms = 500
fall = 2
rise = 2
EOF
"$proxy_bin" --config "$work/hc.toml" >"$work/hc.log" 2>&1 &
pids+=("$!")
wait_port "$hc_port"
# Plain passive health beside it, to show what it misses.
start_proxy passive $((base + 21)) "$proxy_bin" "${upstreams[@]}" --metrics "127.0.0.1:$((base + 22))"
up_gauge() { # up_gauge METRICS_PORT BROKER_N: the upstream_up gauge, or "unset"
    curl -s "http://127.0.0.1:$1/metrics" | awk -v u="upstream=\"127.0.0.1:$((base + $2))\"" \
        'index($0, "mqtt_proxy_upstream_up{" u "}") == 1 { print $2; found = 1 } END { if (!found) print "unset" }'
}
until_gauge() { # until_gauge METRICS_PORT BROKER_N VALUE: waits up to 5 s; prints the last value
    local v
    for _ in $(seq 50); do v=$(up_gauge "$1" "$2"); [[ $v == "$3" ]] && break; sleep 0.1; done
    echo "$v"
}
check "broker1 checked up" "1" "$(until_gauge "$hc_metrics" 1 1)"
home1=""
for i in $(seq 30); do
    if [[ $(mosquitto_sub -p "$hc_port" -i "dn$i" -t whoami -C 1 -W 5 2>/dev/null) == broker1 ]]; then home1="dn$i"; break; fi
done
kill "${broker_pid[1]}"; wait "${broker_pid[1]}" 2>/dev/null || true
check "broker1 stopped: marked down by the check" "0" "$(until_gauge "$hc_metrics" 1 0)"
served=$(mosquitto_sub -p "$hc_port" -i "$home1" -t whoami -C 1 -W 5 2>/dev/null || true)
check "checked: ${home1:-no id} of broker1 is served by another meanwhile" "yes" \
    "$([[ -n $home1 && ( $served == broker2 || $served == broker3 ) ]] && echo yes || echo "no: '$served'")"
check "no client was sent to broker1" "0" \
    "$(grep -c "upstream connect failed.*upstream=127.0.0.1:$((base + 1))" "$work/hc.log" || true)"
"$mosquitto" -c "$work/broker1.conf" >>"$work/broker1.log" 2>&1 &
broker_pid[1]=$!
pids+=("$!")
# Its retained whoami went with it (no persistence): seed it again, for the clients that the
# frozen-broker check below may send here.
wait_port $((base + 1))
mosquitto_pub -p $((base + 1)) -i seed1 -t whoami -m broker1 -r
check "broker1 back: marked up" "1" "$(until_gauge "$hc_metrics" 1 1)"
echo "  $(grep -c 'health check' "$work/hc.log") health-check log lines:"
grep 'health check' "$work/hc.log" | sed 's/^/    /'

echo "# Health checks: a frozen broker (kill -STOP) is marked down; passive health never notices"
# A client of broker2 through the passive proxy, so that its health is known there.
home2=""
for i in $(seq 1 60); do
    if [[ $(mosquitto_sub -p $((base + 21)) -i "frz$i" -t whoami -C 1 -W 5 2>/dev/null) == broker2 ]]; then home2="frz$i"; break; fi
done
check "passive: broker2 up after serving $home2" "1" "$(up_gauge $((base + 22)) 2)"
kill -STOP "${broker_pid[2]}"
check "checked: broker2 frozen, marked down" "0" "$(until_gauge "$hc_metrics" 2 0)"
timeout 3 mosquitto_sub -p $((base + 21)) -i "$home2" -t whoami -C 1 >/dev/null 2>&1 || true
check "passive: broker2 frozen, still up after a client hung on it" "1" "$(up_gauge $((base + 22)) 2)"
check "checked: $home2 is served by another broker meanwhile" "yes" \
    "$(r=$(mosquitto_sub -p "$hc_port" -i "$home2" -t whoami -C 1 -W 5 2>/dev/null); [[ $r == broker1 || $r == broker3 ]] && echo yes || echo "no: $r")"
kill -CONT "${broker_pid[2]}"
check "checked: broker2 thawed, marked up" "1" "$(until_gauge "$hc_metrics" 2 1)"

echo "# Shutdown: a SIGHUP during the drain is not taken, a second SIGTERM exits at once"
start_proxy drain $((base + 14)) "$proxy_bin" "${upstreams[@]}" --drain-ms 30000
drain_pid=$proxy_pid
mosquitto_sub -p $((base + 14)) -i draining -t whoami >/dev/null 2>&1 &
pids+=("$!")
sleep 0.5
kill -TERM "$drain_pid"
sleep 0.5
if kill -0 "$drain_pid" 2>/dev/null; then ok "the first SIGTERM drains"; else not_ok "the first SIGTERM exited"; fi
kill -HUP "$drain_pid"
sleep 0.3
grep -q 'SIGHUP during the drain: not reloaded' "$work/drain.log" && ok "a SIGHUP in the drain is said to be ignored" ||
    not_ok "no log line for a SIGHUP in the drain"
kill -TERM "$drain_pid"
sleep 0.5
if kill -0 "$drain_pid" 2>/dev/null; then not_ok "the second SIGTERM did not exit"; else ok "the second SIGTERM exited at once"; fi
grep -q 'second signal' "$work/drain.log" && ok "it said so in the log" || not_ok "no log line for the second signal"

summary "interop ops"
