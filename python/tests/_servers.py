"""Real components for the tests: a Sluice server (the CLI's ``serve``, real sandboxes), a
scripted OpenAI-compatible model on loopback, and a TCP proxy that cuts or stalls a connection
mid-stream. Nothing here sleeps to synchronise: waits are polls with deadlines."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Dict, List, Optional, Union

REPO_ROOT = Path(__file__).resolve().parents[2]
CLI = REPO_ROOT / "packages" / "cli" / "dist" / "bin.js"


def wait_for(what: str, condition: Callable[[], bool], timeout: float = 30.0, interval: float = 0.02) -> None:
    """Polls ``condition`` until it holds; fails naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class SluiceServer:
    """``node packages/cli/dist/bin.js serve --port 0`` with its own data dir."""

    def __init__(self, env: Dict[str, str]) -> None:
        self.data_dir = tempfile.mkdtemp(prefix="sluice-py-")
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "SLUICE_LOG_LEVEL": "warn",
            "SLUICE_WARM_RUNTIMES": "false",
            "SLUICE_DRAIN_GRACE": "3",
            **env,
        }
        self.proc = subprocess.Popen(
            ["node", str(CLI), "serve", "--port", "0", "--data-dir", self.data_dir],
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.log = ""
        found = threading.Event()
        url: List[str] = []

        def pump() -> None:
            assert self.proc.stderr is not None
            for raw in iter(self.proc.stderr.readline, b""):
                self.log += raw.decode("utf-8", "replace")
                m = re.search(r"listening on (http://\S+)", self.log)
                if m and not found.is_set():
                    url.append(m.group(1))
                    found.set()

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + 60
        while not found.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the Sluice server did not start:\n{self.log}")
        self.url = url[0]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)


# --- the scripted model --------------------------------------------------------------------

Step = Union[Dict[str, object], str]

CREATED = 1733321482


def _chunk(cid: str, model: str, delta: Optional[str], finish: str = "null", usage: str = "null") -> str:
    choices = "" if delta is None else f'{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{finish}}}'
    return (
        f'data: {{"id":"{cid}","object":"chat.completion.chunk","created":{CREATED},"model":"{model}",'
        f'"service_tier":"default","system_fingerprint":"fp_0705bf87c0","choices":[{choices}],"usage":{usage}}}\n\n'
    )


def text_reply(text: str, prompt: int = 20, completion: int = 5) -> List[Step]:
    """A reply that says ``text`` and stops, with usage."""
    return [{"text": text}, {"finish": "stop"}, {"usage": [prompt, completion]}]


def tool_call_reply(name: str, args: Dict[str, object], call_id: str, piece: int = 7) -> List[Step]:
    """A reply that calls one tool, its arguments streamed in pieces that split JSON tokens."""
    raw = json.dumps(args)
    steps: List[Step] = [{"tool_call": [call_id, name]}]
    steps += [{"args": raw[i : i + piece]} for i in range(0, len(raw), piece)]
    steps += [{"finish": "tool_calls"}, {"usage": [30, 10]}]
    return steps


@dataclass
class ScriptedLLM:
    """A chat-completions endpoint that streams the next scripted reply in OpenAI's chunk format,
    byte for byte as test/e2e/helpers/scripted-llm.ts does; ``"stall"`` sends nothing more."""

    replies: List[List[Step]] = field(default_factory=list)
    requests: List[Dict[str, object]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        llm = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.path != "/v1/chat/completions":
                    self._json(404, '{"error":{"message":"not found","type":"invalid_request_error"}}')
                    return
                request = json.loads(body)
                with llm.lock:
                    llm.requests.append(request)
                    reply = llm.replies.pop(0) if llm.replies else None
                if reply is None:
                    self._json(500, '{"error":{"message":"the scripted model has no reply left","type":"server_error"}}')
                    return
                self.send_response(200)
                self.send_header("content-type", "text/event-stream; charset=utf-8")
                self.send_header("cache-control", "no-cache")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                cid = f"chatcmpl-scripted{len(llm.requests)}"
                model = str(request.get("model", "scripted-model"))
                first = True
                try:
                    for step in reply:
                        if step == "stall":
                            # Nothing more until the client goes away (or the tests end).
                            while not llm.stopping.is_set():
                                self.connection.settimeout(0.2)
                                try:
                                    if self.connection.recv(1) == b"":
                                        return
                                except socket.timeout:
                                    continue
                            return
                        assert isinstance(step, dict)
                        self._write(self._render(step, cid, model, first))
                        first = False
                    self._write("data: [DONE]\n\n")
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    return

            def _render(self, step: Dict[str, object], cid: str, model: str, first: bool) -> str:
                role = '"role":"assistant",' if first else ""
                if "text" in step:
                    return _chunk(cid, model, f'{{{role}"content":{json.dumps(step["text"])}}}')
                if "tool_call" in step:
                    call = step["tool_call"]
                    assert isinstance(call, list)
                    role = '"role":"assistant","content":null,' if first else ""
                    fn = f'"type":"function","function":{{"name":{json.dumps(call[1])},"arguments":""}}'
                    return _chunk(cid, model, f'{{{role}"tool_calls":[{{"index":0,"id":{json.dumps(call[0])},{fn}}}],"refusal":null}}')
                if "args" in step:
                    return _chunk(cid, model, f'{{"tool_calls":[{{"index":0,"function":{{"arguments":{json.dumps(step["args"])}}}}}]}}')
                if "finish" in step:
                    return _chunk(cid, model, "{}", json.dumps(step["finish"]))
                u = step["usage"]
                assert isinstance(u, list)
                usage = f'{{"prompt_tokens":{u[0]},"completion_tokens":{u[1]},"total_tokens":{u[0] + u[1]}}}'
                return _chunk(cid, model, None, "null", usage)

            def _write(self, text: str) -> None:
                data = text.encode("utf-8")
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _json(self, status: int, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def push(self, *replies: List[Step]) -> None:
        with self.lock:
            self.replies.extend(replies)

    def pending(self) -> int:
        with self.lock:
            return len(self.replies)

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


# --- a proxy that breaks connections ------------------------------------------------------


class Proxy:
    """A loopback TCP proxy in front of ``upstream``. ``arm("cut", n)`` closes the first
    connection that forwards ``n`` more response bytes; ``arm("stall", n)`` stops forwarding on
    it instead, leaving it open and silent. Either happens once."""

    def __init__(self, upstream: str) -> None:
        m = re.match(r"http://([^:/]+):(\d+)", upstream)
        assert m is not None
        self.upstream = (m.group(1), int(m.group(2)))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.lock = threading.Lock()
        self.mode: Optional[str] = None
        self.after = 0
        self.counted = 0
        self.cuts = 0
        self.stalls = 0
        self.connections = 0
        self.sent_upstream = bytearray()
        self.sockets: List[socket.socket] = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, mode: str, after_bytes: int) -> None:
        with self.lock:
            self.mode, self.after, self.counted = mode, after_bytes, 0

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            with self.lock:
                self.connections += 1
                self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, to_upstream: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if to_upstream:
                    with self.lock:
                        self.sent_upstream += data
                    dst.sendall(data)
                    continue
                with self.lock:
                    action = None
                    if self.mode is not None:
                        self.counted += len(data)
                        if self.counted >= self.after:
                            action, self.mode = self.mode, None
                    if action == "cut":
                        self.cuts += 1
                    elif action == "stall":
                        self.stalls += 1
                if action == "cut":
                    # What was forwarded before reaches the client; the rest never does.
                    dst.sendall(data[: len(data) // 2])
                    for s in (src, dst):
                        try:
                            s.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
                        s.close()
                    return
                if action == "stall":
                    dst.sendall(data[: len(data) // 2])
                    return  # stop reading: the connection stays open and silent
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.closed = True
        self.listener.close()
        with self.lock:
            for s in self.sockets:
                try:
                    s.close()
                except OSError:
                    pass
