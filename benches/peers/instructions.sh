#!/usr/bin/env bash
# Instructions per decode, per decoder and packet shape, counted by callgrind: the difference
# between N decodes and none, divided by N, so start-up and shape building cancel out.
set -euo pipefail
cd "$(dirname "$0")"
bin=$(cargo bench --bench instructions --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys; print([m["executable"] for m in map(json.loads, sys.stdin) if m.get("executable") and "instructions" in m["executable"]][0])')
count() { DECODER="$1" SHAPE="$2" ITERATIONS="$3" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" 2>&1 | sed -n 's/.*Collected : //p'; }
decoders=(mqtt-connect mqttrs floor-validating floor-skim)
printf '| packet |'; printf ' %s |' "${decoders[@]}"; printf '\n|---|'; printf -- '---:|%.0s' "${decoders[@]}"; printf '\n'
for shape in "3.1.1 minimal" "3.1.1 will+user+password" "5.0 all properties" "3.1.1 64 KiB user name"; do
    printf '| %s |' "$shape"
    for decoder in "${decoders[@]}"; do
        if [ "$decoder" = mqttrs ] && [ "${shape:0:3}" = "5.0" ]; then printf ' – |'; continue; fi
        n=1000
        printf ' %d |' $((($(count "$decoder" "$shape" $n) - $(count "$decoder" "$shape" 0)) / n))
    done
    printf '\n'
done
