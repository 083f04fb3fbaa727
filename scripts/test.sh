#!/usr/bin/env bash
# rollguard's whole test suite, on a fresh Debian machine or a developer's: installs and starts
# what is missing (Docker engine, docker-compose, Prometheus, busybox-static, PostgreSQL, git), builds, type-checks,
# checks the dependency rules (.dependency-cruiser.cjs),
# then runs the unit tests and the integration tests against the real parts.
set -euo pipefail
cd "$(dirname "$0")/.."
log_dir=${ROLLGUARD_TEST_LOGS:-/tmp/rollguard-test}
mkdir -p "$log_dir"
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# --- packages -------------------------------------------------------------------------------
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
command -v pg_isready >/dev/null 2>&1 || missing+=(postgresql)
command -v faketime >/dev/null 2>&1 || missing+=(faketime)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nsenter >/dev/null 2>&1 || missing+=(util-linux)
dpkg -s debootstrap >/dev/null 2>&1 || missing+=(debootstrap)   # packaging.test.ts: the base image, made locally
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)   # packaging.test.ts: the unit verified
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v git >/dev/null 2>&1 || missing+=(git)   # the git deploy target's tests: real repositories
command -v pg_dump >/dev/null 2>&1 || missing+=(postgresql-client)   # safety snapshots
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)   # after_rollback redis_flush
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)   # alertmanager.test.ts: the webhook and silences
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log_dir/apt.log"
  # The tests start their own Alertmanager on a free port; the package's service is not wanted on :9093.
  case " ${missing[*]} " in *" prometheus-alertmanager "*) as_root systemctl disable --now prometheus-alertmanager >/dev/null 2>&1 || true ;; esac
fi

# --- Docker engine: no bridge, no iptables; test containers use host networking on 127.0.0.1 ---
if ! docker info >/dev/null 2>&1; then
  echo "starting dockerd"
  as_root sh -c "nohup dockerd --bridge=none --iptables=false >'$log_dir/dockerd.log' 2>&1 &"
  for _ in $(seq 1 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see $log_dir/dockerd.log" >&2; tail -20 "$log_dir/dockerd.log" >&2; exit 1; }
fi

# --- PostgreSQL on 127.0.0.1:5432 ---------------------------------------------------------------
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "starting PostgreSQL"
  for v in $(ls /etc/postgresql 2>/dev/null); do as_root pg_ctlcluster --skip-systemctl-redirect "$v" main start || true; done
  for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
  pg_isready -h 127.0.0.1 -p 5432
fi

# --- Redis on 127.0.0.1:6379 (the follow-up steps' cache flush) ---------------------------------
if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  echo "starting Redis"
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save '' --appendonly no --logfile "$log_dir/redis.log"
  for _ in $(seq 1 60); do (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null && break; sleep 0.5; done
  (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null || { echo "Redis did not start; see $log_dir/redis.log" >&2; exit 1; }
fi

# --- build ------------------------------------------------------------------------------------
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run -s build
npm run -s typecheck
npm run -s depcheck

# --- tests -------------------------------------------------------------------------------------
# Unit tests are pure (no services): two files at a time. Integration tests share the Docker engine,
# PostgreSQL and some ports: three files at a time, except the one that restarts PostgreSQL (alone,
# first) and those that see every container or read every log (alone, last); see
# scripts/integration.ts. Each run ends with its own summary.
node --import tsx --test --test-concurrency=2 --test-reporter=spec src/*/*.test.ts src/*/*/*.test.ts
node --import tsx scripts/integration.ts
