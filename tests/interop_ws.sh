#!/usr/bin/env bash
# Real interop for MQTT over WebSocket and the proxy's sticky client ids: three mosquitto
# brokers on loopback, the proxy example in front of them with a TCP and a WebSocket listener,
# and real clients: paho-mqtt (transport="websockets"), mqtt.js from npm, and a raw WebSocket
# client (tests/interop_ws.py) for what no library sends: a CONNECT split over three frames,
# a CONNECT sharing a frame with a SUBSCRIBE, text frames, garbage, an unmasked frame and one
# over the cap. Each broker holds a retained message on `whoami` naming it, so subscribing to
# `whoami` says which broker a client reached.
#
#   bash tests/interop_ws.sh      # from the repository root; installs what is missing
#
# Ports: brokers on BASE+1..BASE+3, the proxy on BASE+10 (TCP) and BASE+11 (WebSocket), a
# second proxy with assign_client_id = false on BASE+13 (TCP) and BASE+12 (WebSocket), a third
# with --ws-origin on BASE+14 (TCP) and BASE+15 (WebSocket). BASE=18870 unless PORT_BASE is
# set.
set -euo pipefail
cd "$(dirname "$0")/.."

base=${PORT_BASE:-18870}
tcp_port=$((base + 10))
ws_port=$((base + 11))
plain_ws_port=$((base + 12))
origin_ws_port=$((base + 15))
source tests/interop_lib.sh
need node=nodejs npm=npm
need_paho
node_dir=${MQTTJS_DIR:-$work/node}
if [[ ! -d $node_dir/node_modules/mqtt ]]; then
    mkdir -p "$node_dir"
    (cd "$node_dir" && npm install --silent --no-audit --no-fund mqtt@5 >/dev/null)
fi

for n in 1 2 3; do start_broker "$n"; done
upstreams=(--upstream "127.0.0.1:$((base + 1))" --upstream "127.0.0.1:$((base + 2))" --upstream "127.0.0.1:$((base + 3))")

"$proxy_bin" --listen "127.0.0.1:$tcp_port" --ws-listen "127.0.0.1:$ws_port" --ws-path /mqtt "${upstreams[@]}" \
    >"$work/proxy.log" 2>&1 &
pids+=("$!")
"$proxy_bin" --listen "127.0.0.1:$((base + 13))" --ws-listen "127.0.0.1:$plain_ws_port" --no-assign-client-id \
    "${upstreams[@]}" >"$work/proxy-plain.log" 2>&1 &
pids+=("$!")
# Browsers' pages only from app.example.com; paho-mqtt names the address it connects to as its
# origin, so that is listed too.
"$proxy_bin" --listen "127.0.0.1:$((base + 14))" --ws-listen "127.0.0.1:$origin_ws_port" \
    --ws-origin https://app.example.com --ws-origin "http://127.0.0.1:$origin_ws_port" \
    "${upstreams[@]}" >"$work/proxy-origin.log" 2>&1 &
pids+=("$!")
wait_port "$ws_port"
wait_port "$plain_ws_port"
wait_port "$origin_ws_port"

py() { python3 tests/interop_ws.py "$@" 2>>"$work/py.log" || echo error; }
mqttjs() { # mqttjs CLIENT_ID VERSION: the broker mqtt.js reaches over WebSocket
    NODE_PATH="$node_dir/node_modules" timeout 10 node - "$ws_port" "$1" "$2" <<'EOF' 2>>"$work/node.log" || echo error
const mqtt = require("mqtt");
const [port, clientId, version] = process.argv.slice(2);
const client = mqtt.connect(`ws://127.0.0.1:${port}/mqtt`, { clientId, protocolVersion: Number(version), reconnectPeriod: 0 });
client.on("connect", () => client.subscribe("whoami"));
client.on("message", (topic, payload) => { console.log(payload.toString()); client.end(); });
client.on("error", (e) => { console.error(e.message); process.exit(1); });
EOF
}
mqttjs_origin() { # mqttjs_origin ORIGIN: "connected" if mqtt.js, as a page of ORIGIN, gets through
    NODE_PATH="$node_dir/node_modules" timeout 10 node - "$origin_ws_port" "$1" <<'EOF' 2>>"$work/node.log" || echo refused
const mqtt = require("mqtt");
const [port, origin] = process.argv.slice(2);
const client = mqtt.connect(`ws://127.0.0.1:${port}/mqtt`, { clientId: "origin-check", reconnectPeriod: 0, wsOptions: { origin } });
client.on("connect", () => { console.log("connected"); process.exit(0); });
client.on("error", (e) => { console.error(e.message); process.exit(1); });
client.on("close", () => process.exit(2));
EOF
}
whoami_tcp() { mosquitto_sub -p "$tcp_port" -V mqttv311 -i "$1" -t whoami -C 1 -W 5 2>/dev/null || echo none; }

echo "# a client id always reaches the same broker, over WebSocket as over TCP"
for id in alpha bravo charlie; do
    tcp=$(whoami_tcp "$id")
    check "paho 3.1.1 over WebSocket: $id on $tcp, as over TCP" "$tcp $tcp" "$(py whoami "$ws_port" "$id" 4) $(py whoami "$ws_port" "$id" 4)"
    check "paho 5.0 over WebSocket: $id on $tcp" "$tcp" "$(py whoami "$ws_port" "$id" 5)"
    check "mqtt.js 3.1.1 over WebSocket: $id on $tcp" "$tcp" "$(mqttjs "$id" 4)"
    check "mqtt.js 5.0 over WebSocket: $id on $tcp" "$tcp" "$(mqttjs "$id" 5)"
done

echo "# 30 ids over WebSocket spread over all three brokers"
declare -A home
for i in $(seq 1 30); do home[ws$i]=$(py whoami "$ws_port" "ws$i" 4); done
spread=$(printf '%s\n' "${home[@]}" | sort -u | tr '\n' ' ')
check "30 ids reach all three" "broker1 broker2 broker3 " "$spread"
for broker in broker1 broker2 broker3; do
    echo "  $broker: $(printf '%s\n' "${home[@]}" | grep -c "^$broker$") ids"
done

echo "# publish and subscribe end to end over WebSocket"
for version in 4 5; do
    check "paho $version: publish over WebSocket reaches a WebSocket subscriber on the same broker" \
        "chat hello-$version" "$(py pubsub "$ws_port" "$version")"
done
check "mqtt.js publishes to a paho WebSocket subscriber" "chat from-mqttjs" "$(py pubsub_mqttjs "$ws_port" "$node_dir")"

echo "# frame boundaries do not matter [MQTT-6.0.0-2]"
check "a CONNECT split over three frames: CONNACK, SUBACK, then whoami" "20020000 9003000100 $(whoami_tcp split-id)" \
    "$(py split "$ws_port" split-id)"
check "a CONNECT sharing a frame with a SUBSCRIBE: CONNACK, SUBACK, then whoami" \
    "20020000 9003000100 $(whoami_tcp shared-id)" "$(py shared "$ws_port" shared-id)"

echo "# text frames and garbage are refused, a live WebSocket subscriber keeps receiving"
keeper=ws2
keeper_pub=""
for id in "${!home[@]}"; do [[ ${home[$id]} == "${home[$keeper]}" && $id != "$keeper" ]] && keeper_pub=$id && break; done
python3 tests/interop_ws.py keep "$ws_port" "$keeper" >"$work/keeper" 2>>"$work/py.log" &
keeper_pid=$!
pids+=("$keeper_pid")
sleep 1
py publish "$ws_port" "$keeper_pub" keeper/before one >/dev/null
check "a text frame before the CONNECT: close 1003" "close 1003" "$(py text "$ws_port" first)"
check "a text frame after the CONNECT: close 1003" "close 1003" "$(py text "$ws_port" after)"
check "a 5.0 CONNECT with the reserved flag: CONNACK 0x81 in a binary frame, then a close" "2003008100 close" \
    "$(py refused "$ws_port")"
check "garbage in a binary frame: closed without a CONNACK" "close" "$(py garbage "$ws_port")"
check "an unmasked frame after the CONNECT: close 1002" "close 1002" "$(py broken "$ws_port" unmasked)"
check "a frame of 2 MiB after the CONNECT: close 1009" "close 1009" "$(py broken "$ws_port" big)"
check "no subprotocol mqtt: HTTP 400" "400" "$(py upgrade "$ws_port" /mqtt none)"
check "another path: HTTP 404" "404" "$(py upgrade "$ws_port" /other mqtt)"
head -c 100000 /dev/urandom >"$work/noise"
(exec 3<>"/dev/tcp/127.0.0.1/$ws_port"; cat "$work/noise" >&3 2>/dev/null; exec 3<&-) || true
py publish "$ws_port" "$keeper_pub" keeper/after two >/dev/null
sleep 0.5
check "the live WebSocket subscriber got both messages" "keeper/before one|keeper/after two" "$(paste -sd'|' "$work/keeper")"
if kill -0 "$keeper_pid" 2>/dev/null; then ok "the live WebSocket subscriber is still connected"; else not_ok "the live subscriber died"; fi
kill "$keeper_pid" 2>/dev/null || true

echo "# websocket_origins: browsers' pages from other sites are refused"
check "mqtt.js with the listed Origin: connected" "connected" "$(mqttjs_origin https://app.example.com)"
check "mqtt.js with another Origin: refused (HTTP 403)" "refused" "$(mqttjs_origin https://evil.example)"
check "and logged as such" "1" "$(grep -c 'WebSocket upgrade refused: HTTP 403' "$work/proxy-origin.log")"
check "paho-mqtt, whose origin is the address it connects to, listed: served" "$(whoami_tcp paho-origin)" \
    "$(py whoami "$origin_ws_port" paho-origin 4)"

echo "# sticky ids: a 5.0 client without an id resumes its session on the same broker"
sticky=$(py sticky "$ws_port" "$base")
echo "  $sticky"
check "with assign_client_id: session present, all 5 queued messages" "session_present=1 received=5" \
    "$(grep -o 'session_present=[0-9] received=[0-9]*' <<<"$sticky")"
check "the id is the proxy's" "proxy-" "$(grep -o 'id=proxy-' <<<"$sticky" | head -1 | cut -c4-)"
sticky_tcp=$(py sticky_tcp "$tcp_port" "$base")
echo "  over TCP: $sticky_tcp"
check "over TCP too" "session_present=1 received=5" "$(grep -o 'session_present=[0-9] received=[0-9]*' <<<"$sticky_tcp")"
lost=$(py sticky "$plain_ws_port" "$base" lost)
echo "  $lost"
check "with assign_client_id = false: the session is lost" "session_present=0 received=0" \
    "$(grep -o 'session_present=[0-9] received=[0-9]*' <<<"$lost")"

echo
echo "interop_ws: $passed passed, $failed failed"
if [[ $failed -gt 0 ]]; then
    echo "--- proxy log (tail)"; tail -20 "$work/proxy.log"
    echo "--- python log (tail)"; tail -20 "$work/py.log"
    echo "--- node log (tail)"; tail -5 "$work/node.log" 2>/dev/null || true
fi
[[ $failed -eq 0 ]]
