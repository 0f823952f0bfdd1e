#!/usr/bin/env bash
# The installed package works on its own: build the wheel from the repository's files, check what it
# ships, install it (non-editable) into a fresh virtual environment outside the repository, and run
# the installed `likeness` from a directory outside the repository (so nothing can be imported from
# the source tree):
#   likeness --home H demo                                  a real scan; the verdict JSON is checked
#   likeness --home H migrate                               SQLite
#   LIKENESS_DATABASE_URL=postgresql://.../<scratch db> likeness migrate
#                                                           when PostgreSQL is reachable (the scratch
#                                                           database is created and dropped here)
#   likeness worker                                         against Redis, until its log says ready
#   likeness serve --port <free port>                       until GET /v1/health answers 200
#
# Environment (all optional):
#   PYTHON                  interpreter for the build and the venv (default python3; must be 3.11)
#   CHECK_PG_ADMIN_URL      a PostgreSQL URL allowed to CREATE/DROP DATABASE
#                           (default postgresql://postgres@127.0.0.1:5432/postgres)
#   CHECK_REQUIRE_PG=1      fail instead of skipping when PostgreSQL is not reachable
#   CHECK_REDIS_HOST_PORT   Redis to use (default 127.0.0.1:6379); a free database number is chosen
#   CHECK_REDIS_SERVER      a redis-server binary started on a free port when that Redis is not reachable
#   CHECK_KEEP=1            keep the scratch directory (venv, logs) for inspection
# pip's cache is used as usual (no --no-cache-dir): the second run installs from it.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
PG_ADMIN_URL=${CHECK_PG_ADMIN_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
REDIS_HOST_PORT=${CHECK_REDIS_HOST_PORT:-127.0.0.1:6379}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/likeness-wheel-check.XXXXXX")
START=$SECONDS
PIDS=()
PG_DB=""

# pip without the one-line-per-package notices about this machine's extra index directories
pip_quiet() { "$@" 2> >(grep -v "^WARNING: Location 'file:" >&2); }
step() { printf '\n== %s (%ds)\n' "$*" $((SECONDS - START)); }
fail() { printf 'check_wheel: FAILED: %s\n' "$*" >&2; exit 1; }

cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [[ -n "$PG_DB" ]]; then
        "$VPY" - "$PG_ADMIN_URL" "$PG_DB" <<'EOF' || true
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True, connect_timeout=5) as c:
    c.execute(f'DROP DATABASE IF EXISTS "{sys.argv[2]}" WITH (FORCE)')
EOF
    fi
    if [[ -n "${REDIS_URL:-}" && -z "${OWN_REDIS:-}" ]]; then  # what this check left in the shared Redis database
        "$VPY" - "$REDIS_URL" <<'EOF' || true
import sys, redis
redis.Redis.from_url(sys.argv[1], socket_timeout=5).flushdb()
EOF
    fi
    if [[ $rc -ne 0 ]]; then
        for log in "$WORK"/run/*.log; do
            [[ -f "$log" ]] && { printf '\n-- %s (last 40 lines)\n' "$log" >&2; tail -n 40 "$log" >&2; }
        done
    fi
    if [[ "${CHECK_KEEP:-0}" == 1 ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
    printf '\ncheck_wheel: %s in %d s\n' "$([[ $rc -eq 0 ]] && echo passed || echo FAILED)" $((SECONDS - START))
}
trap cleanup EXIT
VPY="$WORK/venv/bin/python"

# -- build ------------------------------------------------------------------------------------------
step "copy the repository's files (tracked and not ignored; no build/ leftovers) to $WORK/src"
mkdir -p "$WORK/src" "$WORK/dist" "$WORK/run"
"$PYTHON" - "$REPO" "$WORK/src" <<'EOF'
import pathlib, shutil, subprocess, sys
repo, dst = map(pathlib.Path, sys.argv[1:])
names = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                       check=True, capture_output=True).stdout.split(b"\0")
for name in filter(None, (n.decode() for n in names)):
    if (repo / name).is_file():
        (dst / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / name, dst / name)
EOF

step "build the wheel"
pip_quiet "$PYTHON" -m pip wheel --quiet --no-deps -w "$WORK/dist" "$WORK/src"
WHEEL=$(ls "$WORK"/dist/likeness-*.whl)
echo "$WHEEL ($(du -k "$WHEEL" | cut -f1) KiB)"

step "check what the wheel ships"
"$PYTHON" - "$WHEEL" "$WORK/src" <<'EOF'
import pathlib, sys, zipfile
wheel, src = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
names = set(zipfile.ZipFile(wheel).namelist())
packages = ("pipeline", "gallery", "workers", "samples")
wanted = {p.relative_to(src).as_posix() for pkg in packages for p in (src / pkg).rglob("*.py")}
wanted |= {p.relative_to(src).as_posix() for p in (src / "pipeline" / "data").glob("*.json")}
wanted |= {p.relative_to(src).as_posix() for p in (src / "pipeline" / "data" / "marks").iterdir()}
wanted |= {"workers/data/migrations/script.py.mako", "workers/data/migrations/env.py"}
console = src / "workers" / "api" / "console"  # the review console's templates and stylesheet
wanted |= {p.relative_to(src).as_posix() for p in [*(console / "templates").glob("*.html"), console / "static" / "console.css"]}
versions = {n for n in wanted if n.startswith("workers/data/migrations/versions/") and n.endswith(".py")}
missing = sorted(wanted - names)
assert not missing, f"missing from the wheel: {missing}"
assert versions, "no migration versions in the source tree?"
assert "pipeline/data/face_swap_probe.json" in names, "face-swap probe not shipped"
assert "pipeline/data/marks/marks.json" in names, "generator logo library not shipped"
assert "samples/__init__.py" in names, "samples/ not shipped"
strays = sorted(n for n in names if n.split("/")[0] in ("tests", "benchmarks", "tools", "docs"))
assert not strays, f"the wheel ships files that are not the product's: {strays[:10]}"
print(f"{len(names)} files; {len(versions)} migration versions, script.py.mako, samples/, pipeline/data/ present")
EOF

# -- install ----------------------------------------------------------------------------------------
step "install the wheel into a fresh venv outside the repository"
"$PYTHON" -m venv "$WORK/venv"
pip_quiet "$VPY" -m pip install --quiet --upgrade pip
# --no-compile: this venv lives for one run; modules compile as they are imported
pip_quiet "$VPY" -m pip install --quiet --no-compile "$WHEEL"
LIKENESS="$WORK/venv/bin/likeness"

cd "$WORK/run"  # every command from here runs outside the repository
unset PYTHONPATH
export PYTHONNOUSERSITE=1
HOME_DIR="$WORK/home"
"$VPY" - "$WORK/venv" <<'EOF'
import importlib, pathlib, sys
venv = pathlib.Path(sys.argv[1]).resolve()
for name in ("pipeline", "gallery", "workers", "samples"):
    where = pathlib.Path(importlib.import_module(name).__file__).resolve()
    assert venv in where.parents, f"{name} imported from {where}, not from the installed wheel"
print("packages import from", venv)
EOF

# -- demo -------------------------------------------------------------------------------------------
step "likeness demo"
"$LIKENESS" --home "$HOME_DIR" demo > demo.json 2> demo.log
"$VPY" - demo.json <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
verdict = report["verdict"]
assert verdict["action"] in ("allow", "label", "review", "restrict", "block"), verdict
assert verdict["reasons"], verdict
yao = [f for f in report["findings"] if f["identity"]["name"] == "Yao Ming"]
assert yao, f"the demo did not find Yao Ming: {report['findings']}"
assert report["tracks"], "no face tracks"
print(f"verdict {verdict['action']}; Yao Ming found ({yao[0]['category']}, {yao[0]['action']}), "
      f"{len(report['tracks'])} tracks")
EOF

# -- migrate ----------------------------------------------------------------------------------------
step "likeness migrate (SQLite)"
"$LIKENESS" --home "$HOME_DIR" migrate | tee migrate-sqlite.json
"$VPY" -c "import json,sys; r=json.load(open('migrate-sqlite.json')); assert r['revision'], r"

step "likeness migrate (PostgreSQL)"
if "$VPY" - "$PG_ADMIN_URL" <<'EOF'
import sys, psycopg
try:
    psycopg.connect(sys.argv[1], connect_timeout=3).close()
except psycopg.Error as exc:
    print(f"PostgreSQL at {sys.argv[1]} not reachable: {exc}".strip())
    sys.exit(1)
EOF
then
    PG_DB="likeness_wheel_check_$$_$RANDOM"
    "$VPY" - "$PG_ADMIN_URL" "$PG_DB" <<'EOF'
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True, connect_timeout=5) as c:
    c.execute(f'CREATE DATABASE "{sys.argv[2]}"')
EOF
    PG_URL=$("$VPY" -c "import sys; from sqlalchemy.engine import make_url; \
print(make_url(sys.argv[1]).set(database=sys.argv[2]).render_as_string(hide_password=False))" "$PG_ADMIN_URL" "$PG_DB")
    LIKENESS_DATABASE_URL="$PG_URL" "$LIKENESS" --home "$HOME_DIR" migrate | tee migrate-pg.json
    LIKENESS_DATABASE_URL="$PG_URL" "$LIKENESS" --home "$HOME_DIR" migrate > migrate-pg-again.json  # idempotent
    cmp -s migrate-pg.json migrate-pg-again.json || fail "a second migrate on PostgreSQL answered differently"
    cmp -s migrate-pg.json migrate-sqlite.json || fail "PostgreSQL and SQLite end at different revisions"
else
    [[ "${CHECK_REQUIRE_PG:-0}" == 1 ]] && fail "PostgreSQL required (CHECK_REQUIRE_PG=1) but not reachable"
    echo "SKIPPED: PostgreSQL not reachable"
fi

# -- Redis ------------------------------------------------------------------------------------------
free_port() { "$VPY" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"; }
redis_up() { "$VPY" -c "import redis,sys; redis.Redis.from_url(sys.argv[1], socket_timeout=2).ping()" "$1" 2>/dev/null; }

if ! redis_up "redis://$REDIS_HOST_PORT/0"; then
    [[ -n "${CHECK_REDIS_SERVER:-}" ]] || fail "Redis at $REDIS_HOST_PORT not reachable (set CHECK_REDIS_SERVER)"
    REDIS_HOST_PORT="127.0.0.1:$(free_port)"
    OWN_REDIS=1
    "$CHECK_REDIS_SERVER" --bind 127.0.0.1 --port "${REDIS_HOST_PORT##*:}" --save "" --appendonly no \
        --dir "$WORK/run" > redis.log 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 50); do redis_up "redis://$REDIS_HOST_PORT/0" && break; sleep 0.2; done
fi
REDIS_DB=$("$VPY" - "$REDIS_HOST_PORT" <<'EOF'
import sys, redis
for db in range(15, 0, -1):   # the highest empty database, claimed for this run; 0 is left to its usual users
    r = redis.Redis.from_url(f"redis://{sys.argv[1]}/{db}", socket_timeout=5)
    if r.dbsize() == 0 and r.set("likeness-wheel-check-claim", "1", nx=True, ex=3600):
        print(db)
        break
else:
    sys.exit("no empty Redis database among 1..15")
EOF
)
export LIKENESS_REDIS_URL="redis://$REDIS_HOST_PORT/$REDIS_DB"
REDIS_URL=$LIKENESS_REDIS_URL
KEY_PREFIX="wheel-check-$$-$RANDOM"
export LIKENESS_SERVICE__KEY_PREFIX=$KEY_PREFIX LIKENESS_SERVICE__QUEUE=$KEY_PREFIX
echo "Redis $LIKENESS_REDIS_URL, key prefix and queue $KEY_PREFIX"

# -- worker -----------------------------------------------------------------------------------------
step "likeness worker (until ready)"
"$LIKENESS" --home "$HOME_DIR" worker --concurrency 1 --name "$KEY_PREFIX@localhost" > worker.log 2>&1 &
WORKER=$!
PIDS+=($WORKER)
for _ in $(seq 1 240); do
    grep -q " ready\." worker.log && grep -q "models loaded in process" worker.log && break
    kill -0 "$WORKER" 2>/dev/null || fail "the worker exited"
    sleep 0.5
done
grep -q " ready\." worker.log || fail "the worker did not say it is ready within 120 s"
grep -q "models loaded in process" worker.log || fail "the worker's pool process did not load the models"
grep -m1 " ready\." worker.log
grep -m1 "models loaded in process" worker.log
kill -TERM "$WORKER"
for _ in $(seq 1 60); do kill -0 "$WORKER" 2>/dev/null || break; sleep 0.5; done
kill -0 "$WORKER" 2>/dev/null && fail "the worker did not stop within 30 s of SIGTERM"
wait "$WORKER" || true
echo "worker stopped"

# -- serve ------------------------------------------------------------------------------------------
step "likeness serve (until /v1/health answers)"
PORT=$(free_port)
"$LIKENESS" --home "$HOME_DIR" serve --host 127.0.0.1 --port "$PORT" > serve.log 2>&1 &
SERVER=$!
PIDS+=($SERVER)
HEALTH=""
for _ in $(seq 1 120); do
    HEALTH=$("$VPY" -c "import httpx,sys; r=httpx.get(sys.argv[1], timeout=2); print(r.status_code, r.text)" \
        "http://127.0.0.1:$PORT/v1/health" 2>/dev/null) && break
    kill -0 "$SERVER" 2>/dev/null || fail "the server exited"
    sleep 0.5
done
echo "GET /v1/health: $HEALTH"
[[ "$HEALTH" == 200* ]] || fail "health check did not answer 200"
kill -TERM "$SERVER"
for _ in $(seq 1 40); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.5; done
kill -0 "$SERVER" 2>/dev/null && fail "the server did not stop within 20 s of SIGTERM"
wait "$SERVER" || true
echo "server stopped"
