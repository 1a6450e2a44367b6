#!/usr/bin/env bash
# Install the peers that bench/gateway.py measures Portico against, idempotently, into bench/.peers/ (git-ignored),
# plus the Debian packages for the fake upstream and the load generator. Never touches the project's .venv.
#
#   bench/peers.sh            # apt packages, LiteLLM's proxy, Portkey's gateway
#   bench/peers.sh litellm    # only some of: apt litellm portkey tools
#
# Optional extra, not installed by default:
#   tools  py-spy in its own venv, bench/.peers/tools, for `bench/gateway.py --profile`.
#
# Pinned versions: litellm[proxy] 1.108.7 (the newest whose [proxy] extra resolves here; 1.107.0 is known to be
# compromised and is refused below) and @portkey-ai/gateway 1.15.2.
set -euo pipefail

LITELLM_VERSION="${LITELLM_VERSION:-1.108.7}"
PORTKEY_VERSION="${PORTKEY_VERSION:-1.15.2}"
PYTHON="${PYTHON:-python3.11}"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
peers="$here/.peers"
mkdir -p "$peers"

if [[ "$LITELLM_VERSION" == "1.107.0" ]]; then
    echo "refusing litellm 1.107.0: that release is known to be compromised" >&2
    exit 2
fi

# pip's warnings about find-links locations configured on this machine but absent are noise here.
quiet_pip() { grep -v "is ignored: it is neither a file nor a directory" || true; }

install_apt() {
    local missing=()
    command -v nginx >/dev/null || missing+=(nginx)
    [[ -e /usr/lib/nginx/modules/ngx_http_echo_module.so ]] || missing+=(libnginx-mod-http-echo)
    command -v wrk >/dev/null || missing+=(wrk)
    if ((${#missing[@]})); then
        echo "apt: installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    # The package starts a system-wide nginx on port 80 where a service manager runs; the bench never uses it.
    echo "apt: nginx $(nginx -v 2>&1 | sed 's/.*\///'), wrk $(dpkg-query -W -f='${Version}' wrk)"
}

install_litellm() {
    local venv="$peers/litellm-venv"
    if [[ -x "$venv/bin/litellm" ]] && [[ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))' 2>/dev/null)" == "$LITELLM_VERSION" ]]; then
        echo "litellm: $LITELLM_VERSION already in $venv"
        return
    fi
    [[ -x "$venv/bin/python" ]] || "$PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip install -q "litellm[proxy]==$LITELLM_VERSION" 2>&1 | quiet_pip
    echo "litellm: installed $LITELLM_VERSION into $venv"
}

install_portkey() {
    local prefix="$peers/portkey"
    local installed="$prefix/node_modules/@portkey-ai/gateway/package.json"
    if [[ -f "$installed" ]] && grep -q "\"version\": \"$PORTKEY_VERSION\"" "$installed"; then
        echo "portkey: @portkey-ai/gateway $PORTKEY_VERSION already in $prefix"
        return
    fi
    mkdir -p "$prefix"
    [[ -f "$prefix/package.json" ]] || echo '{"name": "portico-bench-peers", "private": true}' >"$prefix/package.json"
    npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "@portkey-ai/gateway@$PORTKEY_VERSION"
    echo "portkey: installed @portkey-ai/gateway $PORTKEY_VERSION into $prefix"
}

install_tools() {
    local venv="$peers/tools"
    if [[ -x "$venv/bin/py-spy" ]]; then
        echo "tools: py-spy already in $venv"
        return
    fi
    [[ -x "$venv/bin/python" ]] || "$PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip install -q py-spy 2>&1 | quiet_pip
    echo "tools: installed py-spy into $venv"
}

targets=("$@")
((${#targets[@]})) || targets=(apt litellm portkey)
for target in "${targets[@]}"; do
    case "$target" in
        apt) install_apt ;;
        litellm) install_litellm ;;
        portkey) install_portkey ;;
        tools) install_tools ;;
        *) echo "unknown peer '$target' (apt, litellm, portkey, tools)" >&2; exit 2 ;;
    esac
done
