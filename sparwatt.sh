#!/usr/bin/env bash
# Set up what is missing, then run the demo or the tests:
#   ./sparwatt.sh demo     simulated meters -> gateways -> Mosquitto -> collector
#   ./sparwatt.sh test     the whole test suite (what CI runs)
set -euo pipefail
cd "$(dirname "$0")"

need_packages() {
    local missing=()
    command -v python3 >/dev/null || missing+=(python3)
    python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
    command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
    if [ "$1" = test ]; then
        command -v mosquitto_sub >/dev/null || missing+=(mosquitto-clients)
        command -v socat >/dev/null || missing+=(socat)
        command -v victoria-metrics >/dev/null || [ -x /usr/bin/victoria-metrics ] \
            || missing+=(victoria-metrics)
        command -v chromium >/dev/null || missing+=(chromium)
        command -v openssl >/dev/null || missing+=(openssl)
        ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
    fi
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing system packages: ${missing[*]}"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "need root or sudo to install: ${missing[*]}" >&2; exit 1; }
        sudo="sudo"
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

need_venv() {
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv
    fi
    # reinstall only when the dependency list changed
    local stamp=.venv/.sparwatt-installed
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        .venv/bin/python -m pip install -q --upgrade pip
        .venv/bin/python -m pip install -q -e ".[collector,dev]"
        touch "$stamp"
    fi
}

case "${1:-}" in
    demo)
        shift
        need_packages demo
        need_venv
        exec .venv/bin/python -m devtools.demo "$@"
        ;;
    test)
        shift
        need_packages test
        need_venv
        # lint and types first: both must stay clean, as the conventions ask
        .venv/bin/ruff check --quiet . && echo "ruff: clean"
        .venv/bin/ruff format --check --quiet . || {
            echo "ruff format: files above need '.venv/bin/ruff format .'" >&2; exit 1; }
        echo "ruff format: clean"
        .venv/bin/mypy --no-error-summary sparwatt gateway collector devtools \
            && echo "mypy --strict: clean"
        set +e
        .venv/bin/python -m pytest "$@"
        rc=$?
        # exit 5 means no test was collected: that is a failure here, never a pass
        exit $rc
        ;;
    *)
        echo "usage: ./sparwatt.sh demo|test [args]" >&2
        exit 2
        ;;
esac
