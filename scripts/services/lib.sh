# Shared helpers of the service scripts: where state lives and how to wait.
# Services started here record their pid in $THEORY_SERVICES_DIR/<name>.pid; the matching
# `stop` stops exactly that pid and nothing else.
THEORY_SERVICES_DIR="${THEORY_SERVICES_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/theory-services}"
mkdir -p "$THEORY_SERVICES_DIR"

say() { printf '[services] %s\n' "$*" >&2; }

# wait_for SECONDS DESCRIPTION COMMAND...: retries COMMAND until it succeeds.
wait_for() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      say "error: $what did not come up within ${seconds}s"
      return 1
    fi
    sleep 0.2
  done
}

# stop_pidfile NAME: stops the process recorded by a start script, by its pid.
stop_pidfile() {
  local file="$THEORY_SERVICES_DIR/$1.pid"
  [[ -f $file ]] || return 0
  local pid
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$file"
}
