#!/usr/bin/env bash
# A 3-node MariaDB Galera cluster on this box, for the scale-out test and benchmarks.
#
#   scripts/galera.sh start            # node 1 bootstraps (--wsrep-new-cluster), 2 and 3 join (SST by rsync)
#   scripts/galera.sh status           # wsrep_cluster_size and state of each node
#   scripts/galera.sh stop             # stops the three and deletes the data dirs
#   scripts/galera.sh run -- CMD ...   # start, run CMD with GALERA_URLS set, stop; exits with CMD's status
#
# Own ports and data dirs: SQL on $GALERA_PORT..+2 (default 3311-3313), group communication on
# 4567/4577/4587, IST on 4568/4578/4588, SST on 4444/4454/4464 (all shifted by GALERA_SHIFT, default 0),
# data under $GALERA_DIR (default a fresh mktemp dir recorded in /tmp/pos-galera.dir).
# Needs: mariadbd, mariadb-install-db, galera-4 (/usr/lib/galera/libgalera_smm.so), rsync.
set -euo pipefail

PROVIDER=${GALERA_PROVIDER:-/usr/lib/galera/libgalera_smm.so}
SHIFT=${GALERA_SHIFT:-0}
SQL_BASE=$(( ${GALERA_PORT:-3311} + SHIFT ))
STATE_FILE=${GALERA_STATE_FILE:-/tmp/pos-galera.dir}
NODES=(1 2 3)

sql_port() { echo $(( SQL_BASE + $1 - 1 )); }
gcomm_port() { echo $(( 4567 + SHIFT + ($1 - 1) * 10 )); }
ist_port() { echo $(( 4568 + SHIFT + ($1 - 1) * 10 )); }
sst_port() { echo $(( 4444 + SHIFT + ($1 - 1) * 10 )); }

cluster_address() {
  local a=""
  for n in "${NODES[@]}"; do a+="${a:+,}127.0.0.1:$(gcomm_port "$n")"; done
  echo "gcomm://$a"
}

dir() {
  if [[ -n "${GALERA_DIR:-}" ]]; then echo "$GALERA_DIR"; elif [[ -f "$STATE_FILE" ]]; then cat "$STATE_FILE"; else echo ""; fi
}

urls() {
  local u=""
  for n in "${NODES[@]}"; do u+="${u:+ }mysql://root@127.0.0.1:$(sql_port "$n")/test"; done
  echo "$u"
}

q() { # node sql
  mariadb --protocol=socket -S "$(dir)/n$1/mysqld.sock" -uroot -N -B -e "$2"
}

write_cnf() {
  local n=$1 d
  d="$(dir)/n$n"
  mkdir -p "$d/data"
  cat >"$d/my.cnf" <<EOF
[mariadbd]
user=root
datadir=$d/data
socket=$d/mysqld.sock
pid-file=$d/mysqld.pid
log-error=$d/error.log
port=$(sql_port "$n")
bind-address=127.0.0.1
skip-name-resolve
character-set-server=utf8mb4
collation-server=utf8mb4_general_ci
default_storage_engine=InnoDB
binlog_format=ROW
innodb_autoinc_lock_mode=2
innodb_buffer_pool_size=128M
innodb_log_file_size=64M
max_connections=500
wsrep_on=ON
wsrep_provider=$PROVIDER
wsrep_cluster_name=pos_galera
wsrep_cluster_address=$(cluster_address)
wsrep_node_name=n$n
wsrep_node_address=127.0.0.1:$(gcomm_port "$n")
wsrep_provider_options="gmcast.listen_addr=tcp://127.0.0.1:$(gcomm_port "$n");ist.recv_addr=127.0.0.1:$(ist_port "$n");gcache.size=64M"
wsrep_sst_method=rsync
wsrep_sst_receive_address=127.0.0.1:$(sst_port "$n")
wsrep_slave_threads=2
# Causal reads: a read on one node sees what another node committed before it (an order made on
# node 1 is there when its payment arrives on node 2).
wsrep_sync_wait=1
EOF
}

wait_for() { # node what-to-wait-for seconds
  local n=$1 want=$2 secs=$3
  for _ in $(seq 1 $(( secs * 5 ))); do
    if ! kill -0 "$(cat "$(dir)/n$n/launcher.pid")" 2>/dev/null; then break; fi
    if [[ "$want" == "up" ]]; then
      q "$n" "SELECT 1" >/dev/null 2>&1 && return 0
    else
      local size
      size=$(q "$n" "SHOW STATUS LIKE 'wsrep_cluster_size'" 2>/dev/null | awk '{print $2}')
      local ready
      ready=$(q "$n" "SHOW STATUS LIKE 'wsrep_ready'" 2>/dev/null | awk '{print $2}')
      [[ "$size" == "$want" && "$ready" == "ON" ]] && return 0
    fi
    sleep 0.2
  done
  echo "galera: node $n did not reach '$want' in ${secs}s; its log:" >&2
  tail -n 40 "$(dir)/n$n/error.log" >&2 || true
  return 1
}

start_node() { # node [--wsrep-new-cluster]
  local n=$1; shift
  # The joiner's rsync daemon drops to uid nobody when started by root: let it write the data dir.
  [[ $(id -u) == 0 ]] && chown nobody "$(dir)/n$n/data"
  mariadbd --defaults-file="$(dir)/n$n/my.cnf" "$@" >/dev/null 2>&1 &
  echo $! >"$(dir)/n$n/launcher.pid"
}

start() {
  if [[ -n "$(dir)" && -f "$(dir)/n1/mysqld.pid" ]]; then echo "galera: already running in $(dir) (stop it first)" >&2; exit 1; fi
  if [[ -z "${GALERA_DIR:-}" ]]; then mktemp -d /tmp/pos-galera.XXXXXX >"$STATE_FILE"; else mkdir -p "$GALERA_DIR"; echo "$GALERA_DIR" >"$STATE_FILE"; fi
  local t0=$SECONDS
  for n in "${NODES[@]}"; do
    write_cnf "$n"
  done
  # Only node 1 needs a system database: the joiners receive node 1's state by SST.
  mariadb-install-db --defaults-file="$(dir)/n1/my.cnf" --auth-root-authentication-method=normal --skip-test-db >/dev/null
  start_node 1 --wsrep-new-cluster
  wait_for 1 up 60
  wait_for 1 1 60
  q 1 "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY ''; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; CREATE DATABASE IF NOT EXISTS test;"
  for n in 2 3; do
    start_node "$n"
    wait_for "$n" up 120
  done
  wait_for 1 3 120
  echo "galera: 3 nodes up in $(( SECONDS - t0 )) s, data in $(dir)"
  echo "GALERA_URLS=\"$(urls)\""
}

stop() {
  local d
  d=$(dir)
  [[ -z "$d" || ! -d "$d" ]] && { echo "galera: nothing to stop"; return 0; }
  # Joiners first, the bootstrap node last, so it can leave cleanly.
  for n in 3 2 1; do
    local pidf="$d/n$n/mysqld.pid"
    if [[ -f "$pidf" ]]; then
      local pid
      pid=$(cat "$pidf")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
  [[ -z "${GALERA_KEEP:-}" ]] && rm -rf "$d"
  rm -f "$STATE_FILE"
  echo "galera: stopped"
}

status() {
  for n in "${NODES[@]}"; do
    echo "node $n (port $(sql_port "$n")): $(q "$n" "SHOW STATUS WHERE Variable_name IN ('wsrep_cluster_size','wsrep_local_state_comment','wsrep_ready')" 2>&1 | tr '\n\t' '  ')"
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  urls) urls ;;
  run)
    shift
    [[ "${1:-}" == "--" ]] && shift
    start
    set +e
    GALERA_URLS="$(urls)" "$@"
    rc=$?
    set -e
    stop
    exit $rc
    ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac
