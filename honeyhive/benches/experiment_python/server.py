"""A loopback server answering the routes HoneyHive's Python SDK's evaluate()
calls (and the v1 routes honeyhive-rs records on), counting requests by route.
Answers are minimal and spec-shaped; nothing is stored but counts."""
import json, re, sys, threading, uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

counts = {}
lock = threading.Lock()

def run_object(rid, body):
    return {"id": rid, "run_id": rid, "name": body.get("name", ""), "status": body.get("status", "pending"),
            "metadata": body.get("metadata") or {}, "results": {}, "event_ids": body.get("event_ids") or [],
            "configuration": body.get("configuration") or {}, "is_active": True,
            "created_at": "2026-12-05T00:00:00Z", "scope_type": "project", "scope_id": "bench",
            "datapoint_ids": body.get("datapoint_ids") or []}

def route_of(method, path):
    path = path.split("?", 1)[0]
    path = re.sub(r"[0-9a-fA-F-]{36}", "{id}", path)
    return f"{method} {path}"

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        route = route_of(self.command, self.path)
        with lock:
            counts[route] = counts.get(route, 0) + 1
        try:
            body = json.loads(raw) if raw and raw[:1] in b"{[" else {}
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        out = {}
        if route == "POST /v1/runs":
            rid = body.get("run_id") or str(uuid.uuid4())
            out = {"run_id": rid, "evaluation": run_object(rid, body)}
        elif route == "PUT /v1/runs/{id}":
            rid = self.path.split("/")[3]
            out = {"evaluation": run_object(rid, body), "warning": None}
        elif route in ("GET /v1/runs/{id}/result", "GET /v1/runs/{id}/summary"):
            out = {"status": "completed", "success": True, "passed": [], "failed": [], "metrics": {"aggregation_function": "average", "details": []}, "datapoints": [], "event_details": [], "run_object": run_object(self.path.split("/")[3], {})}
        elif route == "POST /session/start":
            out = {"session_id": str(uuid.uuid4()), "event_id": str(uuid.uuid4()), "org_id": "bench", "workspace_id": "bench", "project_id": "bench"}
        elif route == "POST /v1/sessions":
            out = {"event_id": body.get("event_id") or str(uuid.uuid4()), "session_id": body.get("session_id") or str(uuid.uuid4())}
        elif route == "POST /v1/events/batch":
            evs = body.get("events") or []
            out = {"event_ids": [e.get("event_id") or str(uuid.uuid4()) for e in evs], "success": True}
        elif route.startswith("POST /v1/sessions/") or route == "POST /v1/events":
            out = {"success": True, "event_id": str(uuid.uuid4())}
        elif route.startswith("GET /v1/runs/"):
            out = {"evaluation": {}}
        else:
            out = {"success": True}
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    do_GET = do_POST = do_PUT = do_DELETE = answer

if __name__ == "__main__":
    srv = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), H)
    srv.daemon_threads = True
    print(srv.server_address[1], flush=True)
    def dump(*_):
        print(json.dumps(counts, sort_keys=True), file=sys.stderr, flush=True)
    import signal
    signal.signal(signal.SIGUSR1, lambda *_: dump())
    try:
        srv.serve_forever()
    finally:
        dump()
