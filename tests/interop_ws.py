"""Clients for tests/interop_ws.sh: paho-mqtt over WebSocket, and a raw WebSocket client for
what no MQTT library sends (split and shared frames, text frames, garbage, bad upgrades).

    python3 tests/interop_ws.py MODE PORT [ARGS...]

Each mode prints one line for the script to compare; see the functions below.
"""

import base64
import os
import queue
import socket
import struct
import subprocess
import sys
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

PATIENCE = 5


# --- paho-mqtt -------------------------------------------------------------------------------

def paho(port, client_id, version, transport="websockets"):
    """A connected paho client with a queue of (topic, payload) and its CONNACK."""
    protocol = mqtt.MQTTv5 if str(version) == "5" else mqtt.MQTTv311
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol,
                         transport=transport)
    if transport == "websockets":
        client.ws_set_options(path="/mqtt")
    client.got = queue.Queue()
    client.connack = queue.Queue()
    client.on_connect = lambda c, u, flags, rc, props: c.connack.put((flags, rc, props))
    client.on_message = lambda c, u, m: c.got.put((m.topic, m.payload.decode()))
    return client


def start(client, port, **kwargs):
    client.connect("127.0.0.1", int(port), **kwargs)
    client.loop_start()
    flags, rc, props = client.connack.get(timeout=PATIENCE)
    if rc != 0:
        raise SystemExit(f"CONNACK {rc}")
    return flags, props


def stop(client):
    client.disconnect()
    client.loop_stop()


def whoami(port, client_id, version, transport="websockets"):
    """The broker `client_id` reaches: the retained message on `whoami`."""
    client = paho(port, client_id, version, transport)
    start(client, port)
    client.subscribe("whoami")
    _, broker = client.got.get(timeout=PATIENCE)
    stop(client)
    return broker


def mode_whoami(port, client_id, version):
    print(whoami(port, client_id, version))


def partner(port, home, prefix):
    """A client id that the proxy places on `home`."""
    for i in range(100):
        if whoami(port, f"{prefix}{i}", 4) == home:
            return f"{prefix}{i}"
    raise SystemExit(f"no id of 100 lands on {home}")


def mode_pubsub(port, version):
    """A WebSocket subscriber and a WebSocket publisher on its broker: what the subscriber got."""
    sub_id = f"sub-{version}"
    home = whoami(port, sub_id, version)
    pub_id = partner(port, home, f"pub-{version}-")
    sub = paho(port, sub_id, version)
    start(sub, port)
    sub.subscribe("chat", qos=1)
    time.sleep(0.3)
    pub = paho(port, pub_id, version)
    start(pub, port)
    pub.publish("chat", f"hello-{version}", qos=1).wait_for_publish(PATIENCE)
    stop(pub)
    topic, payload = sub.got.get(timeout=PATIENCE)
    stop(sub)
    print(topic, payload)


def mode_pubsub_mqttjs(port, node_dir):
    """A paho WebSocket subscriber and an mqtt.js WebSocket publisher on its broker."""
    home = whoami(port, "sub-js", 4)
    pub_id = partner(port, home, "js-pub-")
    sub = paho(port, "sub-js", 4)
    start(sub, port)
    sub.subscribe("chat", qos=1)
    time.sleep(0.3)
    script = """
const mqtt = require("mqtt");
const [port, clientId] = process.argv.slice(1);
const client = mqtt.connect(`ws://127.0.0.1:${port}/mqtt`, { clientId, reconnectPeriod: 0 });
client.on("connect", () => client.publish("chat", "from-mqttjs", { qos: 1 }, () => client.end()));
client.on("error", (e) => { console.error(e.message); process.exit(1); });
"""
    env = dict(os.environ, NODE_PATH=os.path.join(node_dir, "node_modules"))
    subprocess.run(["node", "-e", script, str(port), pub_id], env=env, check=True, timeout=10)
    topic, payload = sub.got.get(timeout=PATIENCE)
    stop(sub)
    print(topic, payload)


def mode_keep(port, client_id):
    """A WebSocket subscriber to keeper/# that prints what it gets until killed."""
    client = paho(port, client_id, 5)
    start(client, port)
    client.subscribe("keeper/#", qos=1)
    while True:
        topic, payload = client.got.get()
        print(topic, payload, flush=True)


def mode_publish(port, client_id, topic, message):
    client = paho(port, client_id, 5)
    start(client, port)
    client.publish(topic, message, qos=1).wait_for_publish(PATIENCE)
    stop(client)
    print("published")


def session(port, transport, base):
    """The sticky sequence: connect with an empty id, Clean Start 0 and Session Expiry 300,
    subscribe at QoS 1; disconnect; publish 5 QoS 1 messages straight to the broker that holds
    the session; reconnect through the proxy with the assigned id."""
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 300
    first = paho(port, "", 5, transport)
    _, ack = start(first, port, clean_start=False, properties=props)
    assigned = getattr(ack, "AssignedClientIdentifier", None)
    first.subscribe([("sticky/q", 1), ("whoami", 0)])
    _, home = first.got.get(timeout=PATIENCE)
    stop(first)

    publisher = paho(base + int(home.removeprefix("broker")), f"direct-{uuid.uuid4().hex[:8]}", 5, "tcp")
    start(publisher, base + int(home.removeprefix("broker")))
    for n in range(5):
        publisher.publish("sticky/q", f"queued-{n}", qos=1).wait_for_publish(PATIENCE)
    stop(publisher)

    again = paho(port, assigned, 5, transport)
    flags, _ = start(again, port, clean_start=False, properties=props)
    received = set()
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            topic, payload = again.got.get(timeout=0.2)
        except queue.Empty:
            continue
        if topic == "sticky/q":
            received.add(payload)
    again.subscribe("whoami")
    landed = None
    while landed is None:
        topic, payload = again.got.get(timeout=PATIENCE)
        landed = payload if topic == "whoami" else None
    stop(again)
    return (f"id={assigned} home={home} reconnected_to={landed} "
            f"session_present={int(flags.session_present)} received={len(received)}")


def mode_sticky(port, base, lost=None):
    """With `lost`, retries until the reconnect lands on another broker than the first
    connection (a third of the time it lands on the same one by chance)."""
    for _ in range(10):
        line = session(int(port), "websockets", int(base))
        home, landed = (part.split("=")[1] for part in line.split()[1:3])
        if not lost or home != landed:
            break
    print(line)


def mode_sticky_tcp(port, base):
    print(session(int(port), "tcp", int(base)))


# --- a raw WebSocket client ------------------------------------------------------------------

def ws_open(port, path="/mqtt", protocol="mqtt"):
    """(HTTP status, socket) after the upgrade request."""
    sock = socket.create_connection(("127.0.0.1", int(port)), timeout=PATIENCE)
    key = base64.b64encode(os.urandom(16)).decode()
    offer = f"Sec-WebSocket-Protocol: {protocol}\r\n" if protocol != "none" else ""
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  f"{offer}\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            break
        head += chunk
    status = int(head.split(b" ")[1]) if head else 0
    return status, sock


def send_frame(sock, opcode, payload):
    """One masked frame with FIN set, as a client must send."""
    mask = os.urandom(4)
    header = bytes([0x80 | opcode])
    if len(payload) < 126:
        header += bytes([0x80 | len(payload)])
    elif len(payload) < 65536:
        header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
    else:
        header += bytes([0x80 | 127]) + struct.pack("!Q", len(payload))
    sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def recv_frame(sock):
    """(opcode, payload) of the server's next frame; (None, b"") at end of stream."""
    try:
        first, second = recv_exact(sock, 2)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", recv_exact(sock, 2))[0]
        elif length == 127:
            length = struct.unpack("!Q", recv_exact(sock, 8))[0]
        return first & 0x0F, recv_exact(sock, length)
    except (EOFError, ConnectionResetError, socket.timeout):
        return None, b""


def packets(sock, count):
    """The next `count` MQTT packets from binary frames, however they are framed; then
    "close" if a close frame follows instead."""
    buf, out = b"", []
    while len(out) < count:
        opcode, payload = recv_frame(sock)
        if opcode != 2:
            out.append("close" if opcode == 8 else f"opcode {opcode}")
            break
        buf += payload
        while len(buf) >= 2:
            length, shift, i = 0, 0, 1
            while buf[i] & 0x80:
                length |= (buf[i] & 0x7F) << shift
                shift, i = shift + 7, i + 1
            length |= buf[i] << shift
            if len(buf) < i + 1 + length:
                break
            out.append(buf[:i + 1 + length])
            buf = buf[i + 1 + length:]
    return out


def connect_packet(client_id, level=4, flags=0x02):
    body = b"\x00\x04MQTT" + bytes([level, flags]) + b"\x00\x3c"
    if level == 5:
        body += b"\x00"
    body += struct.pack("!H", len(client_id)) + client_id.encode()
    return bytes([0x10, len(body)]) + body


SUBSCRIBE_WHOAMI = b"\x82\x0b\x00\x01\x00\x06whoami\x00"


def show(found):
    """CONNACK and SUBACK as hex, a PUBLISH by its payload."""
    shown = []
    for packet in found:
        if isinstance(packet, str):
            shown.append(packet)
        elif packet[0] >> 4 == 3:
            shown.append(packet[2 + 2 + len("whoami"):].decode())
        else:
            shown.append(packet.hex())
    return " ".join(shown)


def mode_split(port, client_id):
    _, sock = ws_open(port)
    connect = connect_packet(client_id)
    for part in (connect[:3], connect[3:11], connect[11:]):
        send_frame(sock, 2, part)
        time.sleep(0.05)
    send_frame(sock, 2, SUBSCRIBE_WHOAMI)
    print(show(packets(sock, 3)))


def mode_shared(port, client_id):
    _, sock = ws_open(port)
    send_frame(sock, 2, connect_packet(client_id) + SUBSCRIBE_WHOAMI)
    print(show(packets(sock, 3)))


def close_code(sock):
    """`close CODE` for the next close frame, past any binary frames."""
    while True:
        opcode, payload = recv_frame(sock)
        if opcode == 8:
            return f"close {struct.unpack('!H', payload[:2])[0]}" if len(payload) >= 2 else "close"
        if opcode is None:
            return "eof without a close frame"


def mode_text(port, when):
    _, sock = ws_open(port)
    if when == "after":
        send_frame(sock, 2, connect_packet(f"text-{uuid.uuid4().hex[:8]}"))
        packets(sock, 1)
    send_frame(sock, 1, b"\x10\x0c\x00\x04MQTT")
    print(close_code(sock))


def mode_refused(port):
    _, sock = ws_open(port)
    send_frame(sock, 2, b"\x10\x0d\x00\x04MQTT\x05\x03\x00\x3c\x00\x00\x00")
    print(" ".join(p if isinstance(p, str) else p.hex() for p in packets(sock, 2)))


def mode_garbage(port):
    _, sock = ws_open(port)
    send_frame(sock, 2, b"\x00garbage, not MQTT" + os.urandom(64))
    print(" ".join(p if isinstance(p, str) else p.hex() for p in packets(sock, 1)))


def mode_broken(port, how):
    """A frame no client may send, once the CONNECT is through: unmasked, or announcing 2 MiB."""
    _, sock = ws_open(port)
    send_frame(sock, 2, connect_packet(f"broken-{uuid.uuid4().hex[:8]}"))
    packets(sock, 1)
    if how == "unmasked":
        sock.sendall(b"\x82\x02\xc0\x00")
    else:
        sock.sendall(b"\x82\xff" + struct.pack("!Q", 2 << 20) + os.urandom(4))
    print(close_code(sock))


def mode_upgrade(port, path, protocol):
    status, _ = ws_open(port, path, protocol)
    print(status)


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    globals()[f"mode_{mode}"](*args)
