# What the interop scripts share; each sources it from the repository root, after
# `set -euo pipefail`. It gives:
# - `$work`, a temporary directory removed at exit (kept when KEEP is set), and `pids`, whose
#   processes are killed at exit;
# - `ok`, `not_ok` and `check`, which tally into `$passed` and `$failed`, and `summary NAME`,
#   which prints the tally and fails the script when anything failed;
# - `need`, `need_paho`, `wait_port` and `start_broker`;
# - `$mosquitto`, and `$proxy_bin`, the proxy example, built.

work=$(mktemp -d)
pids=()
passed=0
failed=0

cleanup() {
    # SIGKILL: a proxy told SIGTERM would drain its live connections first. Quietly: bash
    # reports each killed job.
    for pid in "${pids[@]}"; do kill -9 "$pid" || true; done
    wait || true
    [[ -n ${KEEP:-} ]] || rm -rf "$work"
} 2>/dev/null
trap cleanup EXIT

ok() { passed=$((passed + 1)); echo "ok - $*"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $*"; }
check() { # check DESCRIPTION EXPECTED ACTUAL
    if [[ "$2" == "$3" ]]; then ok "$1"; else not_ok "$1: expected '$2', got '$3'"; fi
}
summary() { # summary NAME: the tally; fails when anything failed
    echo
    echo "$1: $passed passed, $failed failed"
    [[ $failed -eq 0 ]]
}

need() { # need COMMAND=PACKAGE...: installs with apt the packages whose command is missing
    local pair missing=()
    for pair in "$@"; do
        command -v "${pair%%=*}" >/dev/null || [[ -x /usr/sbin/${pair%%=*} ]] || missing+=("${pair#*=}")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        echo "installing ${missing[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

need_paho() { # installs paho-mqtt for python3 if missing, from PyPI or else Debian
    python3 -c 'import paho.mqtt' 2>/dev/null && return
    pip install --quiet paho-mqtt >/dev/null 2>&1 || pip install --quiet --break-system-packages paho-mqtt >/dev/null 2>&1 ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-paho-mqtt >/dev/null ||
        { echo "cannot install paho-mqtt" >&2; exit 1; }
}

wait_port() { # wait_port PORT: until something listens there, up to 5 s
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2
    return 1
}

declare -A broker_pid
start_broker() { # start_broker N [CONFIG LINE...]: mosquitto on BASE+N, holding a retained whoami
    local n=$1 port=$((base + $1))
    shift
    printf '%s\n' "listener $port 127.0.0.1" "allow_anonymous true" "persistence false" "user root" "$@" \
        >"$work/broker$n.conf"
    "$mosquitto" -c "$work/broker$n.conf" >>"$work/broker$n.log" 2>&1 &
    broker_pid[$n]=$!
    pids+=("$!")
    wait_port "$port"
    mosquitto_pub -p "$port" -i "seed$n" -t whoami -m "broker$n" -r
}

need mosquitto=mosquitto mosquitto_sub=mosquitto-clients
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)
cargo build --quiet --example proxy
proxy_bin=target/debug/examples/proxy
