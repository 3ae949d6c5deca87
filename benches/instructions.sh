#!/usr/bin/env bash
# Instructions per decode of each packet shape, counted by callgrind: the difference between
# N decodes and none, divided by N, so start-up and shape building cancel out.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(cargo bench --bench instructions --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys; print([m["executable"] for m in map(json.loads, sys.stdin) if m.get("executable") and "instructions" in m["executable"]][0])')
count() { SHAPE="$1" ITERATIONS="$2" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" 2>&1 | sed -n 's/.*Collected : //p'; }
printf '| packet | instructions per decode |\n|---|---:|\n'
for shape in "3.1.1 minimal" "3.1.1 will+user+password" "5.0 all properties" "3.1.1 64 KiB user name" "from_utf8 64 KiB" \
    "5.0 CONNACK, mosquitto's" "5.0 CONNACK, 8 User Properties"; do
    n=1000
    printf '| %s | %d |\n' "$shape" $((($(count "$shape" $n) - $(count "$shape" 0)) / n))
done
