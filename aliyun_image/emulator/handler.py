"""HTTP plumbing: read a request safely, record it, apply faults, send the reply.

Robustness rules: every reply has a Content-Length (keep-alive stays usable); bodies larger
than the limit are refused without buffering them; any unexpected exception becomes a JSON
500 instead of a dropped connection; nothing is logged to stderr.
"""

from __future__ import annotations

import contextlib
import json
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from .control import handle as handle_control
from .endpoints import dispatch, route
from .faults import Fault
from .multipart import MultipartError, parse
from .records import Recorded
from .replies import JSON_TYPE, HttpReply, error_reply, json_reply, new_request_id, oss_error_reply

if TYPE_CHECKING:
    from .state import EmulatorState

MAX_API_BODY = 64 * 1024 * 1024  # three 10 MB images as base64 data URIs fit comfortably
MAX_OSS_BODY = 101 * 1024 * 1024  # max_file_size_mb (100) plus form overhead
DRAIN_LIMIT = 256 * 1024 * 1024  # read-and-discard oversize bodies up to this, so the client sees the reply


class BodyTooLarge(Exception):
    """The request body exceeds the endpoint's limit."""


class BadFraming(Exception):
    """Content-Length / chunked framing is broken; the connection cannot be reused."""


class EmulatorHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with daemon threads that knows its :class:`EmulatorState` and its open sockets."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], state: EmulatorState):
        self.state = state
        self.open_sockets: set[socket.socket] = set()
        super().__init__(address, Handler)

    def handle_error(self, request, client_address) -> None:
        """Stay silent: a client that vanishes mid-reply is not the emulator's problem."""

    def close_open_sockets(self) -> None:
        """Shut down every client connection (used by :meth:`Emulator.stop`)."""
        for sock in list(self.open_sockets):
            with contextlib.suppress(OSError):  # already closed by the client: nothing to do
                sock.shutdown(socket.SHUT_RDWR)


class Handler(BaseHTTPRequestHandler):
    """One connection; serves keep-alive requests until the client closes or a reply says close."""

    protocol_version = "HTTP/1.1"
    server_version = "DashScopeEmulator/1.0"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are dropped after this (seconds)
    server: EmulatorHTTPServer

    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without NODELAY, Nagle plus the client's
        # delayed ACK adds ~40 ms to every reply.
        with contextlib.suppress(OSError):  # not a TCP socket (or already gone): no harm done
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.open_sockets.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.open_sockets.discard(self.connection)

    def log_message(self, format, *args) -> None:  # stdlib signature
        """Silent: requests are recorded in memory, never printed."""

    def send_error(self, code, message=None, explain=None) -> None:
        """Malformed request lines etc.: a JSON error instead of the stdlib's HTML page."""
        self.close_connection = True
        body = json.dumps({"request_id": new_request_id(), "code": "BadRequest",
                           "message": message or self.responses.get(code, ("Error",))[0]}).encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", JSON_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError:
            pass

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = lambda self: self._serve()

    # --- request ---------------------------------------------------------------------------------
    def _read_exact(self, n: int) -> bytes:
        data = self.rfile.read(n)
        if len(data) != n:
            raise BadFraming("body shorter than Content-Length")
        return data

    def _read_chunked(self, limit: int) -> bytes:
        out = bytearray()
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise BadFraming("bad chunk size") from None
            if size < 0:
                raise BadFraming("bad chunk size")
            if size == 0:
                while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(out)
            if len(out) + size > limit:
                raise BadFraming("chunked body too large")  # cannot answer mid-stream cleanly
            out += self._read_exact(size)
            self._read_exact(2)

    def _read_body(self, limit: int) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            n = int(raw.strip())
            if n < 0:
                raise ValueError
        except ValueError:
            raise BadFraming("bad Content-Length") from None
        if n > limit:
            if n <= DRAIN_LIMIT:  # drain so the client, still sending, gets to read our reply
                left = n
                while left > 0:
                    got = self.rfile.read(min(left, 1 << 20))
                    if not got:
                        break
                    left -= len(got)
            else:
                self.close_connection = True
            raise BodyTooLarge()
        return self._read_exact(n)

    def _serve(self) -> None:
        state = self.server.state
        try:
            split = urlsplit(self.path)
            path = split.path
            query = dict(parse_qsl(split.query, keep_blank_values=True))
        except ValueError:
            path, query = self.path, {}
        if path.startswith("/_emulator/"):
            self._control(state, path)
            return
        endpoint = route(self.command, path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        problem: HttpReply | None = None
        body = b""
        try:
            body = self._read_body(MAX_OSS_BODY if endpoint == "oss" else MAX_API_BODY)
        except BodyTooLarge:
            problem = (oss_error_reply(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
                       if endpoint == "oss" else error_reply(413, "BadRequest.TooLarge", "Payload Too Large."))
        except (BadFraming, OSError, ValueError):
            problem = error_reply(400, "BadRequest", "The request body could not be read.")
            self.close_connection = True
        parts, form = None, None
        if endpoint == "oss" and problem is None:
            parts, form = _form(body, headers.get("content-type", ""))
        rec = Recorded(self.command, path, query, headers, body, endpoint, form)
        state.record(rec)
        if problem is not None:
            problem.close = problem.close or self.close_connection
            self._send(problem)
            return
        fault = state.faults.take(endpoint)
        post_fault = None
        if fault is not None:
            if fault.kind == "reset":
                self._reset()
                return
            if fault.kind == "hang":
                state.wait(fault.seconds)
            elif fault.kind in ("truncate", "slow"):
                post_fault = fault
            else:
                self._send(_fault_reply(fault, endpoint))
                return
        try:
            reply = dispatch(state, rec, parts)
        except Exception as exc:  # noqa: BLE001 - an emulator bug must answer 500, not kill the connection
            reply = error_reply(500, "InternalError", f"Emulator error: {exc.__class__.__name__}")
        self._send(reply, post_fault)

    def _control(self, state: EmulatorState, path: str) -> None:
        try:
            body = self._read_body(MAX_API_BODY)
            reply = handle_control(state, self.command, path, body)
        except BodyTooLarge:
            reply = error_reply(413, "BadRequest.TooLarge", "Payload Too Large.")
        except (BadFraming, OSError):
            self.close_connection = True
            reply = error_reply(400, "BadRequest", "The request body could not be read.")
        except Exception as exc:  # noqa: BLE001 - an emulator bug must answer 500, not kill the connection
            reply = error_reply(500, "InternalError", f"Emulator error: {exc.__class__.__name__}")
        self._send(reply)

    # --- reply -----------------------------------------------------------------------------------
    def _reset(self) -> None:
        """Drop the connection without a reply (the request was read and recorded)."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send(self, reply: HttpReply, fault: Fault | None = None) -> None:
        state = self.server.state
        close = reply.close or self.close_connection or (fault is not None and fault.kind == "truncate")
        try:
            self.send_response(reply.status)
            if reply.content_type:
                self.send_header("Content-Type", reply.content_type)
            if reply.status != 204:  # RFC 9110: no Content-Length on 204
                self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command == "HEAD" or not reply.body:
                return
            if fault is not None and fault.kind == "truncate":
                self.wfile.write(reply.body[: len(reply.body) // 2])
                self._reset()
            elif fault is not None and fault.kind == "slow":
                chunks = 10
                step = -(-len(reply.body) // chunks)
                for i in range(0, len(reply.body), step):
                    self.wfile.write(reply.body[i:i + step])
                    self.wfile.flush()
                    if i + step < len(reply.body) and state.wait(fault.seconds / chunks):
                        self._reset()  # emulator stopping: give up on the slow reply
                        return
            else:
                self.wfile.write(reply.body)
        except OSError:  # client went away; nothing to tell it
            self.close_connection = True


def _form(body: bytes, content_type: str):
    """Parsed OSS form parts and their :attr:`Recorded.form` record (both None if malformed)."""
    try:
        parts = parse(body, content_type)
    except MultipartError:
        return None, None
    # A file field (one with a filename, or OSS's "file") is listed with its file name; its
    # bytes go to "files".
    def is_file(p) -> bool:
        return p.filename is not None or p.name == "file"

    fields = [(p.name, (p.filename or "") if is_file(p) else p.text) for p in parts]
    files = {p.name: {"filename": p.filename, "content_type": p.content_type, "data": p.data}
             for p in parts if is_file(p)}
    return parts, {"fields": fields, "files": files}


def _fault_reply(fault: Fault, endpoint: str) -> HttpReply:
    """The reply a pre-handler fault sends instead of the real one."""
    if fault.kind == "fail":
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        if fault.body is not None:
            return HttpReply(fault.status, fault.body, fault.content_type, headers)
        return error_reply(fault.status, fault.code, fault.message, headers)
    if fault.kind == "expired":
        return oss_error_reply(403, "AccessDenied", "Request has expired.")
    if fault.kind == "not_image":
        html = b"<!DOCTYPE html><html><head><title>Portal</title></head><body>Please sign in.</body></html>"
        return HttpReply(200, html, "text/html; charset=utf-8")
    # missing_fields: HTTP 200, a request_id, but not the fields a client needs.
    rid = new_request_id()
    if endpoint == "task_get":
        return json_reply({"request_id": rid, "output": {"task_status": "SUCCEEDED"}})
    if endpoint == "task_create":
        return json_reply({"request_id": rid, "output": {"task_status": "PENDING"}})
    if endpoint == "generation":
        return json_reply({"request_id": rid, "output": {}, "usage": {"image_count": 1}})
    return json_reply({"request_id": rid})
