#!/usr/bin/env bash
# N prosodia-server replicas on loopback behind nginx, balancing gRPC per request.
#
#   deploy/scale-out.sh [-n N] [--port PORT] [--base-port P | --replica-ports P1,P2,...]
#                       [--metrics-base-port M | --metrics-ports M1,M2,...]
#                       [--workers W] [--models DIR]
#                       [--server-arg ARG]... [-- COMMAND [ARG...]]
#
# Starts replica i (1..N) with `prosodia-server --listen 127.0.0.1:<P+i-1>` (default P 50151)
# and one foreground nginx (not the system service: its own prefix, pid, logs and temporary
# files under a temporary directory) listening for gRPC on 127.0.0.1:PORT (default 8080), with
# a generated configuration: an `upstream` block of the replicas and `grpc_pass` to it. It
# prints, on standard output, one line per process and then `ready`:
#
#   replica 1 127.0.0.1:50151 pid 4242 metrics 127.0.0.1:9151
#   nginx 127.0.0.1:8080 pid 4250 prefix /tmp/prosodia-scale.XXXXXX
#   ready
#
# With a COMMAND, it runs it with PROSODIA_SERVER=http://127.0.0.1:PORT (what `prosodia
# classify` and `stream` read) and PROSODIA_NGINX=127.0.0.1:PORT in its environment, then stops
# everything and exits with the command's status. Without one, it waits until it gets SIGINT
# or SIGTERM, or nginx exits; a replica that dies meanwhile is left dead (nginx routes around
# it). On exit every process it started is stopped and the temporary directory removed
# (KEEP=1 keeps it, e.g. for access.log, whose last field names the replica that answered).
#
# Options:
#   -n, --replicas N        replicas (default 2)
#   --port PORT             nginx's gRPC port (default 8080)
#   --base-port P           replica i listens on P+i-1 (default 50151)
#   --replica-ports LIST    the replicas' ports, comma-separated (sets N)
#   --metrics-base-port M   replica i serves /metrics on M+i-1 (default: no metrics)
#   --metrics-ports LIST    the replicas' metrics ports, comma-separated
#   --workers W             --workers of each replica (default: the server's, one per core)
#   --models DIR            --models of each replica (default: the bundled models/)
#   --server-arg ARG        one more argument for every replica (repeatable)
#
# Environment:
#   PROSODIA_SERVER_BIN   the server binary (default: $CARGO_TARGET_DIR/release/prosodia-server,
#                         built with `cargo build --release` when missing)
#   NGINX                 the nginx binary (default: nginx on PATH, else /usr/sbin/nginx)
#   NGINX_WORKERS         nginx worker processes (default 1)
#   KEEP=1                keep the temporary directory
#
# Retries: nginx sends a call whose connection to a replica fails (refused, reset, timed
# out before anything was sent) to the next replica (`grpc_next_upstream error timeout`) and
# takes a failed replica out of rotation for 5 s; a call already sent to a replica that dies
# gets HTTP 502, which gRPC clients read as UNAVAILABLE and retry themselves (docs/deployment.md).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

log() { echo "scale-out: $*" >&2; }
die() { log "$*"; exit 2; }

replicas=2
port=8080
base_port=50151
replica_ports=""
metrics_base=""
metrics_list=""
workers=""
models="$root/models"
server_args=()
command=()
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--replicas) replicas="${2:?}"; shift 2 ;;
    --port) port="${2:?}"; shift 2 ;;
    --base-port) base_port="${2:?}"; shift 2 ;;
    --replica-ports) replica_ports="${2:?}"; shift 2 ;;
    --metrics-base-port) metrics_base="${2:?}"; shift 2 ;;
    --metrics-ports) metrics_list="${2:?}"; shift 2 ;;
    --workers) workers="${2:?}"; shift 2 ;;
    --models) models="${2:?}"; shift 2 ;;
    --server-arg) server_args+=("${2?}"); shift 2 ;;
    --) shift; command=("$@"); break ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

is_port() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le 65535 ]; }
ports=()
if [ -n "$replica_ports" ]; then
  IFS=, read -r -a ports <<<"$replica_ports"
else
  [[ "$replicas" =~ ^[0-9]+$ ]] && [ "$replicas" -ge 1 ] || die "-n needs a positive number"
  is_port "$base_port" || die "--base-port $base_port is not a port"
  for i in $(seq 0 $((replicas - 1))); do ports+=($((base_port + i))); done
fi
[ "${#ports[@]}" -ge 1 ] || die "no replica ports"
for p in "${ports[@]}" "$port"; do is_port "$p" || die "$p is not a port"; done
metrics_ports=()
if [ -n "$metrics_list" ]; then
  IFS=, read -r -a metrics_ports <<<"$metrics_list"
  [ "${#metrics_ports[@]}" = "${#ports[@]}" ] || die "--metrics-ports needs one port per replica"
elif [ -n "$metrics_base" ]; then
  is_port "$metrics_base" || die "--metrics-base-port needs a port"
  for i in "${!ports[@]}"; do metrics_ports+=($((metrics_base + i))); done
fi
for p in "${metrics_ports[@]}"; do is_port "$p" || die "$p is not a port"; done

nginx_bin="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
[ -x "$nginx_bin" ] || die "nginx is not installed (Debian: apt-get install nginx; or set NGINX)"
server_bin="${PROSODIA_SERVER_BIN:-}"
if [ -z "$server_bin" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/prosodia-target}"
  server_bin="$CARGO_TARGET_DIR/release/prosodia-server"
  if [ ! -x "$server_bin" ]; then
    log "building $server_bin"
    cargo build --release -p prosodia-server >&2
  fi
fi
[ -x "$server_bin" ] || die "no server binary at $server_bin"

dir="$(mktemp -d "${TMPDIR:-/tmp}/prosodia-scale.XXXXXX")"
# nginx started as root runs its workers as `nobody`; they write the temporary files here.
chmod 755 "$dir"
pids=()
nginx_pid=""
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$nginx_pid" ]; then kill -QUIT "$nginx_pid" 2>/dev/null || true; fi
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  # Give the replicas their graceful shutdown (calls in flight), then make sure.
  for _ in $(seq 1 50); do
    local alive=0
    for p in "${pids[@]}" $nginx_pid; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}" $nginx_pid; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then log "kept $dir"; else rm -rf "$dir"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

in_use() { (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # port pid name log
  for _ in $(seq 1 600); do
    if in_use "$1"; then return 0; fi
    if ! kill -0 "$2" 2>/dev/null; then
      log "$3 exited before listening on $1; its log:"; tail -20 "$4" >&2 || true; return 1
    fi
    sleep 0.1
  done
  log "$3 did not listen on 127.0.0.1:$1 within 60 s"; return 1
}

for p in "${ports[@]}" "${metrics_ports[@]}" "$port"; do
  if in_use "$p"; then die "127.0.0.1:$p is already in use (choose other ports)"; fi
done

lines=()
for i in "${!ports[@]}"; do
  n=$((i + 1)) p=${ports[$i]}
  args=(--listen "127.0.0.1:$p" --models "$models" --log warn)
  metrics=""
  if [ "${#metrics_ports[@]}" -gt 0 ]; then
    metrics="127.0.0.1:${metrics_ports[$i]}"
    args+=(--metrics-listen "$metrics")
  fi
  [ -z "$workers" ] || args+=(--workers "$workers")
  "$server_bin" "${args[@]}" "${server_args[@]}" >"$dir/replica-$n.log" 2>&1 &
  pids+=($!)
  lines+=("replica $n 127.0.0.1:$p pid $! metrics ${metrics:--}")
done
for i in "${!ports[@]}"; do
  wait_port "${ports[$i]}" "${pids[$i]}" "replica $((i + 1))" "$dir/replica-$((i + 1)).log"
done

# nginx 1.25.1 replaced `listen ... http2` with the `http2` directive.
version="$("$nginx_bin" -v 2>&1 | sed -n 's#.*nginx/\([0-9][0-9.]*\).*#\1#p')"
if [ "$(printf '%s\n1.25.1\n' "${version:-0}" | sort -V | head -1)" = 1.25.1 ]; then
  listen="listen 127.0.0.1:$port; http2 on;"
else
  listen="listen 127.0.0.1:$port http2;"
fi
upstreams=""
for p in "${ports[@]}"; do
  upstreams+="        server 127.0.0.1:$p max_fails=1 fail_timeout=5s;"$'\n'
done
mkdir -p "$dir/logs"
cat >"$dir/nginx.conf" <<EOF
# Generated by deploy/scale-out.sh; deploy/nginx-grpc.conf explains each directive.
daemon off;
worker_processes ${NGINX_WORKERS:-1};
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events {
    worker_connections 4096;
}
http {
    log_format grpc '\$remote_addr [\$time_local] "\$request" \$status \$request_time \$upstream_addr';
    access_log $dir/logs/access.log grpc buffer=64k flush=1s;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;

    upstream prosodia {
$upstreams        keepalive 64;
    }

    server {
        $listen
        client_max_body_size 64m;
        # Many calls in flight on one client connection (the default is 128).
        http2_max_concurrent_streams 1024;
        grpc_connect_timeout 2s;
        grpc_read_timeout 3600s;
        grpc_send_timeout 3600s;

        location / {
            grpc_pass grpc://prosodia;
            # A replica that refuses or drops the connection before the call was sent: try the
            # next. A call already sent is not resent (gRPC is POST, non-idempotent to nginx):
            # the client gets 502, i.e. UNAVAILABLE, and its own retry policy resends it.
            grpc_next_upstream error timeout http_502 http_503;
            grpc_next_upstream_tries ${#ports[@]};
        }

        # nginx's own errors as gRPC statuses instead of HTML pages: with no replica to take
        # a call (502, 503, 504) the client gets grpc-status 14, UNAVAILABLE, which it may
        # retry. (An HTML 502 page is read as a broken message by some clients: tonic says
        # INTERNAL.)
        error_page 502 503 504 = @grpc_unavailable;
        location @grpc_unavailable {
            default_type application/grpc;
            add_header grpc-status 14 always;
            add_header grpc-message "nginx: no replica could take the call" always;
            return 204;
        }
    }
}
EOF
"$nginx_bin" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/logs/error.log" >"$dir/logs/nginx.out" 2>&1 &
nginx_pid=$!
wait_port "$port" "$nginx_pid" nginx "$dir/logs/error.log"
lines+=("nginx 127.0.0.1:$port pid $nginx_pid prefix $dir")
printf '%s\n' "${lines[@]}" ready

if [ "${#command[@]}" -gt 0 ]; then
  set +e
  PROSODIA_SERVER="http://127.0.0.1:$port" PROSODIA_NGINX="127.0.0.1:$port" "${command[@]}"
  status=$?
  set -e
  exit "$status"
fi
# Until a signal (the traps above) or nginx ends.
status=0
wait "$nginx_pid" || status=$?
nginx_pid=""
log "nginx exited (status $status); its error log:"
tail -20 "$dir/logs/error.log" >&2 || true
exit 1
