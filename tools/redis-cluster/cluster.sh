#!/usr/bin/env bash
# A real Redis Cluster on 127.0.0.1 for the specs' real tier: 3 masters and
# 3 replicas from Debian's redis-server, data in a temporary folder.
#
#   tools/redis-cluster/cluster.sh up            start and form the cluster (ports 7000-7005)
#   tools/redis-cluster/cluster.sh down          stop every node and remove the folder
#   tools/redis-cluster/cluster.sh addrs         print the nodes as host:port,host:port,...
#   tools/redis-cluster/cluster.sh start PORT    start one stopped node again (it rejoins)
#
# TOLLGATE_CLUSTER_DIR sets the folder (default: $TMPDIR or /tmp, then
# tollgate-redis-cluster). cluster-node-timeout is 2 s, so a killed master's
# replica is promoted within a few seconds, and cluster-require-full-coverage
# is off, so the other masters keep serving their slots meanwhile.
set -euo pipefail

dir="${TOLLGATE_CLUSTER_DIR:-${TMPDIR:-/tmp}/tollgate-redis-cluster}"
ports=(7000 7001 7002 7003 7004 7005)
host=127.0.0.1

die() { echo "redis-cluster: $*" >&2; exit 1; }

need() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
    die "redis-server and redis-cli are not installed (Debian: apt-get install redis-server)"
}

cli() { redis-cli -h "$host" -p "$1" "${@:2}"; }

addrs() {
  local out=() p
  for p in "${ports[@]}"; do out+=("$host:$p"); done
  local IFS=,
  echo "${out[*]}"
}

start_node() {
  local port=$1
  [ -f "$dir/$port/redis.conf" ] || die "no node $port in $dir: run 'up' first"
  redis-server "$dir/$port/redis.conf"
  for _ in $(seq 100); do
    cli "$port" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "node $port did not answer within 10 s; see $dir/$port/redis.log"
}

# wait_ok waits until every node reports cluster_state:ok and agrees on
# the slots, or fails after 60 s.
wait_ok() {
  local p
  for _ in $(seq 600); do
    local ok=1
    for p in "${ports[@]}"; do
      cli "$p" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || { ok=0; break; }
    done
    if [ $ok = 1 ] && redis-cli --cluster check "$host:${ports[0]}" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  die "the cluster did not reach cluster_state:ok within 60 s; see $dir/*/redis.log"
}

up() {
  need
  local p
  for p in "${ports[@]}"; do
    if cli "$p" ping >/dev/null 2>&1; then
      die "port $p already answers: another Redis runs there (stop it, or run 'down' if it is ours)"
    fi
  done
  rm -rf "$dir"
  for p in "${ports[@]}"; do
    mkdir -p "$dir/$p"
    cat >"$dir/$p/redis.conf" <<CONF
bind $host
port $p
dir $dir/$p
daemonize yes
pidfile $dir/$p/redis.pid
logfile $dir/$p/redis.log
cluster-enabled yes
cluster-config-file nodes.conf
cluster-node-timeout 2000
cluster-require-full-coverage no
appendonly no
save ""
CONF
    start_node "$p"
  done
  local nodes=()
  for p in "${ports[@]}"; do nodes+=("$host:$p"); done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 ||
    { cat "$dir/create.log" >&2; die "redis-cli --cluster create failed"; }
  wait_ok
  echo "redis-cluster: 3 masters + 3 replicas on $(addrs) (data in $dir)"
}

# down stops only the nodes this script started (those with a pid file in
# its folder), so it never shuts down another Redis on the same ports.
down() {
  local p pid pids=()
  for p in "${ports[@]}"; do
    pid=$(cat "$dir/$p/redis.pid" 2>/dev/null) || continue
    if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then pids+=("$pid"); fi
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$dir"
  echo "redis-cluster: stopped ${#pids[@]} nodes"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  addrs) addrs ;;
  start) [ -n "${2:-}" ] || die "start needs a port"; need; start_node "$2" ;;
  *) die "usage: $0 up|down|addrs|start PORT" ;;
esac
