#!/usr/bin/env bash
# Real interop for the proxy's TLS edge, nothing mocked: a CA, a server certificate and client
# certificates made here with openssl; two mosquitto brokers, the first with an ACL
# (`user alice` / `topic readwrite alice/#`); the proxy example with a plain listener, a TLS
# listener (client certificates optional, the CN as User Name) and two PROXY protocol
# listeners; HAProxy 2.6 in front with send-proxy-v2; mosquitto_pub/mosquitto_sub, paho-mqtt,
# openssl s_client and python sockets as clients.
#
#   bash tests/interop_tls.sh    # from the repository root; installs what is missing with apt/pip
#
# Ports: brokers on BASE+1 and BASE+2, the proxy on BASE+10..BASE+13, HAProxy on BASE+20 and
# BASE+21 (BASE=18940 unless PORT_BASE is set).
set -euo pipefail
cd "$(dirname "$0")/.."

base=${PORT_BASE:-18940}
plain_port=$((base + 10))
tls_port=$((base + 11))
trusting_port=$((base + 12))
untrusting_port=$((base + 13))
haproxy_port=$((base + 20))
haproxy_untrusted_port=$((base + 21))
source tests/interop_lib.sh
need haproxy=haproxy openssl=openssl python3=python3
need_paho
check_log() { # check_log DESCRIPTION PATTERN: a proxy log line matches
    for _ in $(seq 20); do grep -qE "$2" "$work/proxy.log" && { ok "$1"; return; }; sleep 0.1; done
    not_ok "$1: no log line matches '$2'"
}

echo "# certificates: a CA, the proxy's (proxy.test, a/b.example.com, 127.0.0.1), alice, bob, carol (revoked)"
pki=$work/pki
mkdir "$pki"
ec() { echo -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes; }
# shellcheck disable=SC2046
openssl req -x509 $(ec) -keyout "$pki/ca.key" -out "$pki/ca.pem" -days 2 -subj /CN=interop-ca \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
issue() { # issue NAME CN EXTENSIONS
    # shellcheck disable=SC2046
    openssl req $(ec) -keyout "$pki/$1.key" -out "$pki/$1.csr" -subj "/CN=$2" 2>/dev/null
    printf '%s\n' "$3" >"$pki/$1.ext"
    openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial \
        -out "$pki/$1.pem" -days 2 -extfile "$pki/$1.ext" 2>/dev/null
}
issue server proxy "subjectAltName=DNS:proxy.test,DNS:a.example.com,DNS:b.example.com,IP:127.0.0.1
extendedKeyUsage=serverAuth"
issue alice alice "extendedKeyUsage=clientAuth"
issue bob bob "extendedKeyUsage=clientAuth"
issue carol carol "extendedKeyUsage=clientAuth"
touch "$pki/index.txt"
echo 1000 >"$pki/crlnumber"
printf '[ca]\ndefault_ca = ca\n[ca]\ndatabase = %s\ncrlnumber = %s\ndefault_md = sha256\ndefault_crl_days = 2\n' \
    "$pki/index.txt" "$pki/crlnumber" >"$pki/ca.cnf"
openssl ca -config "$pki/ca.cnf" -keyfile "$pki/ca.key" -cert "$pki/ca.pem" -revoke "$pki/carol.pem" 2>/dev/null
openssl ca -config "$pki/ca.cnf" -keyfile "$pki/ca.key" -cert "$pki/ca.pem" -gencrl -out "$pki/ca.crl" 2>/dev/null
cp "$pki/server.pem" "$pki/live.pem"
check "openssl verifies the server certificate" "$pki/server.pem: OK" "$(openssl verify -CAfile "$pki/ca.pem" "$pki/server.pem")"

echo "# brokers: broker1 with the ACL, broker2 without"
cat >"$work/acl" <<EOF
topic readwrite whoami
pattern read whoami
user alice
topic readwrite alice/#
EOF
start_broker 1 "acl_file $work/acl"
start_broker 2

cat >"$work/proxy.toml" <<EOF
listen = ["127.0.0.1:$plain_port"]

[limits]
handshake_deadline_ms = 2000

[[listener]]
addr = "127.0.0.1:$tls_port"
tls = { cert = "$pki/live.pem", key = "$pki/server.key", client_ca = "$pki/ca.pem", client_auth = "optional", crl = ["$pki/ca.crl"], alpn = ["mqtt"] }

[[listener]]
addr = "127.0.0.1:$trusting_port"
proxy_protocol_from = ["127.0.0.1"]

[[listener]]
addr = "127.0.0.1:$untrusting_port"
proxy_protocol_from = ["192.0.2.0/24"]

[[route]]
name = "tenant-b"
sni = "b.example.com"
identity = "username"
without_certificate = "pass"
upstreams = ["127.0.0.1:$((base + 2))"]

[[route]]
name = "far"
remote_addr = "127.0.0.5"
upstreams = ["127.0.0.1:$((base + 2))"]

[[route]]
name = "near"
remote_addr = "127.0.0.6"
upstreams = ["127.0.0.1:$((base + 1))"]

[[route]]
name = "certified"
identity = "username"
upstreams = ["127.0.0.1:$((base + 1))"]
EOF
"$proxy_bin" --config "$work/proxy.toml" >"$work/proxy.log" 2>&1 &
proxy_pid=$!
pids+=("$proxy_pid")
for port in "$plain_port" "$tls_port" "$trusting_port" "$untrusting_port"; do wait_port "$port"; done

tls() { echo --cafile "$pki/ca.pem" -h 127.0.0.1 -p "$tls_port"; }
as() { echo --cert "$pki/$1.pem" --key "$pki/$1.key"; }

echo "# identity: the certificate's CN is the User Name the broker's ACL sees"
for version in mqttv311 mqttv5; do
    mosquitto_sub -p $((base + 1)) -u alice -i "watch-$version" -t 'alice/#' -v -W 4 >"$work/watch-$version" 2>/dev/null &
    watcher=$!
    sleep 1
    # shellcheck disable=SC2046
    mosquitto_pub $(tls) $(as alice) -V "$version" -i "alice-$version" -t alice/x -m "from alice" -q 1
    # shellcheck disable=SC2046
    mosquitto_pub $(tls) $(as bob) -V "$version" -i "bob-$version" -u alice -t alice/x -m "from bob posing as alice" -q 1 \
        >"$work/bob-$version" 2>&1 || true
    wait "$watcher" || true
    check "$version: alice's certificate publishes to alice/x; bob's, claiming alice, does not" \
        "alice/x from alice" "$(cat "$work/watch-$version")"
done
check "5.0: the broker answers bob's publish 'not authorized'" "1" "$(grep -ci 'not authori' "$work/bob-mqttv5")"
check_log "the log names the certificate" 'cn="bob".*route=certified|route=certified.*cn="bob"'
# shellcheck disable=SC2046
out=$(mosquitto_pub $(tls) -V mqttv5 -i anon5 -u alice -t alice/x -m nope 2>&1 || true)
check "5.0 without a certificate: refused, not authorized" "1" "$(grep -ci 'not authori' <<<"$out")"
# shellcheck disable=SC2046
out=$(mosquitto_pub $(tls) -V mqttv311 -i anon4 -u alice -t alice/x -m nope 2>&1 || true)
check "3.1.1 without a certificate: refused, not authorised" "1" "$(grep -ci 'not authori' <<<"$out")"
check_log "the log says why" 'anon5.*refused \(no client certificate name'
# shellcheck disable=SC2046
if mosquitto_pub $(tls) $(as carol) -i carol -t alice/x -m revoked >/dev/null 2>&1; then
    not_ok "carol's revoked certificate was taken"
else
    ok "carol's certificate, revoked by the CA's CRL, fails the handshake"
fi
check_log "the log says why" 'TLS handshake failed: .*[Rr]evoked'

echo "# paho-mqtt over TLS with alice's certificate"
paho() { # paho VERSION: publishes alice/paho as alice's certificate; prints the CONNACK code
    python3 - "$tls_port" "$pki" "$1" <<'EOF'
import sys, threading
import paho.mqtt.client as mqtt
port, pki, version = int(sys.argv[1]), sys.argv[2], sys.argv[3]
protocol = mqtt.MQTTv5 if version == "5" else mqtt.MQTTv311
args = (mqtt.CallbackAPIVersion.VERSION2,) if hasattr(mqtt, "CallbackAPIVersion") else ()
client = mqtt.Client(*args, client_id=f"paho-{version}", protocol=protocol)
client.tls_set(ca_certs=f"{pki}/ca.pem", certfile=f"{pki}/alice.pem", keyfile=f"{pki}/alice.key")
done = threading.Event()
def on_connect(c, userdata, flags, rc, *rest):
    print(int(rc.value) if hasattr(rc, "value") else int(rc))
    c.publish("alice/paho", f"paho {version}", qos=1).wait_for_publish(3)
    done.set()
client.on_connect = on_connect
client.connect("127.0.0.1", port)
client.loop_start()
done.wait(5)
client.disconnect()
client.loop_stop()
EOF
}
for version in 4 5; do
    mosquitto_sub -p $((base + 1)) -u alice -i "paho-watch-$version" -t alice/paho -v -C 1 -W 8 >"$work/paho-$version" 2>/dev/null &
    watcher=$!
    sleep 1
    check "paho $version: CONNACK success over TLS" "0" "$(paho "$version" 2>&1 | tail -1)"
    wait "$watcher" || true
    check "paho $version: alice/paho delivered" "alice/paho paho $version" "$(head -1 "$work/paho-$version")"
done

echo "# SNI: b.example.com routes to broker2 (no certificate passes there); others to broker1"
whoami_sni() { # whoami_sni SERVERNAME ID [CERT]: the broker whose retained whoami comes back
    python3 - "$tls_port" "$pki" "$1" "$2" "${3:-}" <<'EOF'
import socket, ssl, sys
port, pki, servername, client_id, cert = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4].encode(), sys.argv[5]
context = ssl.create_default_context(cafile=f"{pki}/ca.pem")
if cert:
    context.load_cert_chain(f"{pki}/{cert}.pem", f"{pki}/{cert}.key")
connect = b"\x10" + bytes([12 + len(client_id)]) + b"\x00\x04MQTT\x04\x02\x00\x3c\x00" + bytes([len(client_id)]) + client_id
subscribe = b"\x82\x0b\x00\x01\x00\x06whoami\x00"
got = b""
try:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as tcp:
        with context.wrap_socket(tcp, server_hostname=servername) as tls:
            tls.sendall(connect + subscribe)
            while b"broker" not in got or len(got) < got.find(b"broker") + 7:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                got += chunk
except OSError:
    pass
start = got.find(b"broker")
print(got[start:start + 7].decode() if start >= 0 else "none")
EOF
}
check "SNI b.example.com reaches broker2" "broker2" "$(whoami_sni b.example.com sni-b alice)"
check "SNI b.example.com without a certificate: its route passes it" "broker2" "$(whoami_sni b.example.com sni-b-anon)"
check "SNI a.example.com reaches broker1" "broker1" "$(whoami_sni a.example.com sni-a alice)"
check_log "the log shows the server name and route" \
    'sni=b\.example\.com.*route=tenant-b|route=tenant-b.*sni=b\.example\.com'

echo "# TLS on the plain port, plain text on the TLS port: refused and logged as what they are"
mosquitto_pub -h 127.0.0.1 -p "$tls_port" -i plain-on-tls -t t -m x >/dev/null 2>&1 || true
check_log "plain-text CONNECT on the TLS port" 'plain-text MQTT CONNECT on a TLS listener'
mosquitto_pub --cafile "$pki/ca.pem" -h 127.0.0.1 -p "$plain_port" -i tls-on-plain -t t -m x >/dev/null 2>&1 || true
check_log "ClientHello on the plain port" 'TLS ClientHello on a plain listener'
check "neither reads as a malformed CONNECT" "0" "$(grep -ci 'malformed' "$work/proxy.log" || true)"

echo "# a stalled handshake is cut at its deadline (2 s); others are served meanwhile"
python3 - "$tls_port" >"$work/stall" <<'EOF' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # half a ClientHello, then nothing
start = time.monotonic()
s.settimeout(10)
try:
    s.recv(1)
except OSError:
    pass
print(round(time.monotonic() - start, 1))
EOF
stall=$!
sleep 0.3
mosquitto_sub -p $((base + 1)) -u alice -i stall-watch -t alice/during -v -W 3 >"$work/during" 2>/dev/null &
watcher=$!
sleep 0.3
# shellcheck disable=SC2046
mosquitto_pub $(tls) $(as alice) -i during-stall -t alice/during -m served -q 1
wait "$watcher" || true
check "a client is served during the stall" "alice/during served" "$(cat "$work/during")"
wait "$stall"
took=$(cat "$work/stall")
if awk -v t="$took" 'BEGIN { exit !(t >= 1.5 && t <= 3.5) }'; then ok "the stalled handshake was cut after ${took}s"; else not_ok "stall cut after '${took}'s"; fi
check_log "and logged" 'no PROXY header or TLS handshake by the deadline'

echo "# HAProxy 2.6 in front with send-proxy-v2 and its CRC32C"
cat >"$work/haproxy.cfg" <<EOF
defaults
    mode tcp
    timeout connect 3s
    timeout client 30s
    timeout server 30s
frontend trusted
    bind 127.0.0.1:$haproxy_port
    default_backend trusting
frontend untrusted
    bind 127.0.0.1:$haproxy_untrusted_port
    default_backend untrusting
backend trusting
    # With the header's CRC32C, which the proxy checks.
    server proxy 127.0.0.1:$trusting_port send-proxy-v2 proxy-v2-options crc32c
backend untrusting
    server proxy 127.0.0.1:$untrusting_port send-proxy-v2
EOF
haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
pids+=("$!")
wait_port "$haproxy_port"
whoami_from() { # whoami_from SOURCE-ADDRESS PORT ID: the broker paho reaches from that address
    python3 - "$1" "$2" "$3" <<'EOF'
import sys, queue
import paho.mqtt.client as mqtt
source, port, client_id = sys.argv[1], int(sys.argv[2]), sys.argv[3]
args = (mqtt.CallbackAPIVersion.VERSION2,) if hasattr(mqtt, "CallbackAPIVersion") else ()
client = mqtt.Client(*args, client_id=client_id)
got = queue.Queue()
client.on_connect = lambda c, *rest: c.subscribe("whoami")
client.on_message = lambda c, u, m: got.put(m.payload.decode())
try:
    client.connect("127.0.0.1", port, bind_address=source)
    client.loop_start()
    print(got.get(timeout=4))
except Exception:
    print("none")
EOF
}
check "from 127.0.0.5 through HAProxy: the 'far' route, by the carried address" "broker2" \
    "$(whoami_from 127.0.0.5 "$haproxy_port" hap-far)"
check "from 127.0.0.6 through HAProxy: the 'near' route" "broker1" "$(whoami_from 127.0.0.6 "$haproxy_port" hap-near)"
check_log "the log has the client's address and HAProxy's" 'peer=127\.0\.0\.5:[0-9]+ .*client_id=hap-far.*via=127\.0\.0\.1'
check "a PROXY header from an address the listener does not trust: refused" "none" \
    "$(whoami_from 127.0.0.1 "$haproxy_untrusted_port" hap-untrusted)"
check_log "and logged as such" 'PROXY header from an untrusted address'
check "no PROXY header from the address the listener trusts for one: refused" "none" \
    "$(whoami_from 127.0.0.1 "$trusting_port" no-header)"
check_log "and logged as such" 'no PROXY header from a trusted address'

echo "# SIGHUP with a broken certificate file keeps the old config; live handshakes go on"
echo "not a certificate" >"$pki/live.pem"
kill -HUP "$proxy_pid"
check_log "one clear log line" 'config refused.*live.pem'
# shellcheck disable=SC2046
if mosquitto_pub $(tls) $(as alice) -i after-hup -t alice/y -m still 2>/dev/null; then
    ok "TLS clients are still served with the old certificate"
else
    not_ok "TLS broke after a refused reload"
fi

echo
echo "interop tls: $passed passed, $failed failed"
[[ $failed -eq 0 ]] || { echo "--- proxy log"; tail -40 "$work/proxy.log"; exit 1; }
