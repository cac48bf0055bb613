#!/usr/bin/env bash
# Load test (BENCHMARKS.md, "Load test"): gunicorn on loopback, locust headless against it.
#   DATABASE_URL   the database to serve (a generated one; default: the SQLite file in var/)
#   LOAD_USERS     concurrent users, one run each (default "10 50")
#   LOAD_SECONDS   length of each run after ramp-up (default 120)
#   LOAD_WORKERS   gunicorn worker processes (default 4), LOAD_THREADS threads each (default 2)
#   LOAD_STEADY    1 (default): the figures are of the steady state, counted from when every
#                  user has logged in (locust --reset-stats); 0 counts the ramp-up's logins too
set -euo pipefail
cd "$(dirname "$0")/../.."

PORT=${LOAD_PORT:-8100}
OUT=${LOAD_OUT:-var/load}
mkdir -p "$OUT"
# Production settings (DEBUG off), served over plain HTTP on loopback: no TLS redirect and
# no Secure-only cookies here, which a TLS-terminating proxy provides in production. Plain
# static storage: locust fetches no static files, and the hashed-name build takes minutes.
export SECRET_KEY=${SECRET_KEY:-load-test} ALLOWED_HOSTS=127.0.0.1,localhost DEBUG=0 \
  SECURE_SSL_REDIRECT=0 SESSION_COOKIE_SECURE=0 CSRF_COOKIE_SECURE=0 LOG_LEVEL=WARNING \
  KEHU_PLAIN_STATIC=1 DB_CONN_MAX_AGE=${DB_CONN_MAX_AGE:-60} API_USER_RATE=${API_USER_RATE:-100000/min}
.venv/bin/python manage.py collectstatic --no-input -v0

.venv/bin/gunicorn kehu.wsgi:application --bind "127.0.0.1:$PORT" \
  --workers "${LOAD_WORKERS:-4}" --threads "${LOAD_THREADS:-2}" --worker-class gthread \
  --access-logfile /dev/null --error-logfile "$OUT/gunicorn.log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 1 60); do
  curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz" && break
  sleep 1
done

status=0
for users in ${LOAD_USERS:-10 50}; do
  echo "== $users users, ${LOAD_SECONDS:-120} s"
  .venv/bin/locust -f tests/load/locustfile.py --headless --host "http://127.0.0.1:$PORT" \
    --users "$users" --spawn-rate "$(( users / 5 > 1 ? users / 5 : 1 ))" \
    --run-time "$(( ${LOAD_SECONDS:-120} + users / 5 ))s" --stop-timeout 10 \
    --csv "$OUT/u$users" --only-summary --loglevel WARNING \
    $([ "${LOAD_STEADY:-1}" = 1 ] && echo --reset-stats) || status=1
  .venv/bin/python tests/load/summary.py "$OUT/u${users}_stats.csv" || status=1
done
exit "$status"
