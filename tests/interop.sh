#!/usr/bin/env bash
# Real interop: three mosquitto brokers on loopback, the proxy example in front of them, and
# real clients (mosquitto_sub/mosquitto_pub at MQTT 3.1.1 and 5.0, and paho-mqtt when pip can
# install it) going through it. Each broker holds a retained message on `whoami` naming it, so
# subscribing to `whoami` says which broker a client reached.
#
#   bash tests/interop.sh        # from the repository root; installs mosquitto with apt if missing
#
# Ports: brokers on BASE+1..BASE+3, the proxy on BASE+10 (BASE=18840 unless PORT_BASE is set).
set -euo pipefail
cd "$(dirname "$0")/.."

base=${PORT_BASE:-18840}
proxy_port=$((base + 10))
source tests/interop_lib.sh

for n in 1 2 3; do start_broker "$n"; done

"$proxy_bin" --listen "127.0.0.1:$proxy_port" \
    --upstream "127.0.0.1:$((base + 1))" --upstream "127.0.0.1:$((base + 2))" --upstream "127.0.0.1:$((base + 3))" \
    --down-for-ms 60000 --upstream-timeout-ms 1000 >"$work/proxy.log" 2>&1 &
pids+=("$!")
wait_port "$proxy_port"

whoami() { # whoami CLIENT_ID VERSION: the broker that client reaches through the proxy
    mosquitto_sub -p "$proxy_port" -V "$2" -i "$1" -t whoami -C 1 -W 5 2>/dev/null || echo none
}

echo "# a client id always reaches the same broker"
for version in mqttv311 mqttv5; do
    for id in alpha bravo charlie; do
        first=$(whoami "$id" "$version")
        again="$(whoami "$id" "$version") $(whoami "$id" "$version")"
        # Two "none"s would match a first "none": a broker it must be.
        [[ $first =~ ^broker[123]$ ]] || first="a broker, not '$first',"
        check "$version: $id stays on $first" "$first $first" "$again"
    done
done
v311=$(whoami delta mqttv311)
[[ $v311 =~ ^broker[123]$ ]] || v311="a broker, not '$v311'"
check "the version does not change the broker" "$v311" "$(whoami delta mqttv5)"

echo "# many ids spread over all three brokers"
declare -A home
for i in $(seq 1 30); do home[client$i]=$(whoami "client$i" mqttv311); done
spread=$(printf '%s\n' "${home[@]}" | sort -u | tr '\n' ' ')
check "30 ids reach all three" "broker1 broker2 broker3 " "$spread"
for broker in broker1 broker2 broker3; do
    echo "  $broker: $(printf '%s\n' "${home[@]}" | grep -c "^$broker$") ids"
done

echo "# publish and subscribe end to end"
for version in mqttv311 mqttv5; do
    sub_home=$(whoami "sub-$version" "$version")
    publisher=""
    for i in $(seq 1 50); do
        if [[ $(whoami "pub-$version-$i" "$version") == "$sub_home" ]]; then publisher="pub-$version-$i"; break; fi
    done
    mosquitto_sub -p "$proxy_port" -V "$version" -i "sub-$version" -t chat -C 1 -W 5 >"$work/chat-$version" 2>&1 &
    sub=$!
    sleep 0.5
    mosquitto_pub -p "$proxy_port" -V "$version" -i "$publisher" -t chat -m "hello over $version"
    wait "$sub" || true
    check "$version: $publisher to sub-$version on $sub_home" "hello over $version" "$(cat "$work/chat-$version")"
done

echo "# garbage is refused, other connections are unharmed"
keeper=client2
keeper_pub=""
for id in "${!home[@]}"; do [[ ${home[$id]} == "${home[$keeper]}" && $id != "$keeper" ]] && keeper_pub=$id && break; done
mosquitto_sub -p "$proxy_port" -V mqttv5 -i "$keeper" -t "keeper/#" -v >"$work/keeper" 2>&1 &
keeper_pid=$!
pids+=("$keeper_pid")
sleep 0.5
refusal() { # refusal BYTES: what the proxy answers to them before it closes, as hex; "down"
    # if nothing listens, "unanswered" if it neither answers nor closes within 5 s
    python3 - "$proxy_port" "$1" <<'PY'
import codecs, socket, sys
port, sent = int(sys.argv[1]), codecs.decode(sys.argv[2], "unicode_escape").encode("latin-1")
try:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
except OSError:
    sys.exit(print("down"))
sock.sendall(sent)
got = b""
try:
    while chunk := sock.recv(4096):
        got += chunk
except TimeoutError:
    sys.exit(print("unanswered"))
except ConnectionResetError:
    pass
print(got.hex())
PY
}
check "HTTP request: closed without a byte" "" "$(refusal 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')"
check "5.0 CONNECT with the reserved flag: CONNACK 0x81" "2003008100" \
    "$(refusal '\x10\x0d\x00\x04MQTT\x05\x03\x00\x3c\x00\x00\x00')"
check "3.1.1 CONNECT, empty id without clean session: CONNACK 0x02" "20020002" \
    "$(refusal '\x10\x0c\x00\x04MQTT\x04\x00\x00\x3c\x00\x00')"
check "level 7: unsupported version" "20020001" "$(refusal '\x10\x0c\x00\x04MQTT\x07\x02\x00\x3c\x00\x00')"
head -c 100000 /dev/urandom >"$work/noise"
(exec 3<>"/dev/tcp/127.0.0.1/$proxy_port"; cat "$work/noise" >&3 2>/dev/null; exec 3<&-) || true
mosquitto_pub -p "$proxy_port" -V mqttv5 -i "$keeper_pub" -t keeper/after -m still-here
sleep 0.5
check "the live subscriber still gets messages" "keeper/after still-here" "$(tail -1 "$work/keeper")"
if kill -0 "$keeper_pid" 2>/dev/null; then ok "the live subscriber is still connected"; else not_ok "the live subscriber died"; fi
kill "$keeper_pid"

echo "# killing one broker moves only its clients, and they reconnect to the others"
victim=${home[client1]}
victim_n=${victim#broker}
mover=""
for id in "${!home[@]}"; do [[ ${home[$id]} == "$victim" && $id != client1 ]] && mover=$id && break; done
mosquitto_sub -p "$proxy_port" -V mqttv311 -i "$mover" -t whoami >"$work/mover" 2>&1 &
pids+=("$!")
sleep 0.5
check "$mover starts on $victim" "$victim" "$(head -1 "$work/mover")"
kill "${broker_pid[$victim_n]}"
moved=0
stayed=0
for id in "${!home[@]}"; do
    [[ $id == "$mover" ]] && continue
    now=$(whoami "$id" mqttv311)
    if [[ ${home[$id]} == "$victim" ]]; then
        [[ $now != "$victim" && $now != none ]] && moved=$((moved + 1))
    else
        [[ $now == "${home[$id]}" ]] && stayed=$((stayed + 1))
    fi
done
on_victim=$(($(printf '%s\n' "${home[@]}" | grep -c "^$victim$") - 1))
check "the other $on_victim clients of $victim reach another broker" "$on_victim" "$moved"
check "the $((29 - on_victim)) clients of the other brokers stay where they were" "$((29 - on_victim))" "$stayed"
for _ in $(seq 50); do [[ $(wc -l <"$work/mover") -ge 2 ]] && break; sleep 0.1; done
reconnected=$(sed -n 2p "$work/mover")
if [[ -n $reconnected && $reconnected != "$victim" ]]; then
    ok "the live $mover reconnected by itself, to $reconnected"
else
    not_ok "the live $mover did not reconnect elsewhere: '$(tr '\n' ' ' <"$work/mover")'"
fi

echo "# paho-mqtt as a second client"
if python3 -c 'import paho.mqtt' 2>/dev/null || pip install --quiet paho-mqtt >/dev/null 2>&1; then
    paho() { # paho CLIENT_ID VERSION: the broker paho reaches, as whoami says
        python3 - "$proxy_port" "$1" "$2" <<'EOF'
import sys, queue
import paho.mqtt.client as mqtt
port, client_id, version = int(sys.argv[1]), sys.argv[2], sys.argv[3]
protocol = mqtt.MQTTv5 if version == "5" else mqtt.MQTTv311
got = queue.Queue()
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
client.on_connect = lambda c, u, f, rc, p: c.subscribe("whoami")
client.on_message = lambda c, u, m: got.put(m.payload.decode())
client.connect("127.0.0.1", port)
client.loop_start()
print(got.get(timeout=5))
client.disconnect()
client.loop_stop()
EOF
    }
    for id in alpha bravo charlie; do
        check "paho 3.1.1 reaches $id's broker" "$(whoami "$id" mqttv311)" "$(paho "$id" 4 2>&1 | tail -1)"
        check "paho 5.0 reaches $id's broker" "$(whoami "$id" mqttv5)" "$(paho "$id" 5 2>&1 | tail -1)"
    done
else
    echo "  skipped: paho-mqtt could not be installed"
fi

summary interop
