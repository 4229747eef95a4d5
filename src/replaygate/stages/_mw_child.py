"""The middleware child process and its pipes, for :mod:`replaygate.stages.middleware`.

Three daemon threads: one writes queued messages to the child's stdin (hex lines, a large
body in 1 MiB hex chunks), one reads its stdout lines and hands each decoded message to the
stage, one passes its stderr through to ours with a prefix. The write queue is bounded in
bytes, so a child that stops reading blocks the sender (or refuses, when asked not to block)
instead of growing memory. What the messages mean is the stage's business.
"""

from __future__ import annotations

import binascii
import collections
import subprocess
import sys
import threading
from collections.abc import Callable

from ..errors import MiddlewareError
from ._mwproto import decode_message

__all__ = ["CHUNK", "Message", "MiddlewareChild"]

CHUNK = 1 << 20
_F_SETPIPE_SZ = 1031

# type, id, timestamp (ns), latency (ns or None), raw HTTP bytes
Message = tuple[int, str, int, int | None, bytes]


class MiddlewareChild:
    """``argv`` run with ``env``, started on first use.

    ``on_message(message)`` is called for each decoded stdout line, ``on_bad_line(line,
    error)`` for a line that is not a hex message, ``on_exit(status)`` once stdout has ended
    and the process has exited, ``on_crash(error)`` if reading fails unexpectedly.
    ``failed()`` tells a blocked sender to give up."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        *,
        command: str,
        max_queued_bytes: int,
        stderr_prefix: str,
        on_message: Callable[[Message], None],
        on_bad_line: Callable[[bytes, Exception], None],
        on_exit: Callable[[int], None],
        on_crash: Callable[[BaseException], None],
        failed: Callable[[], bool],
    ) -> None:
        self.argv = argv
        self._env = env
        self._command = command
        self._max_bytes = max_queued_bytes
        self._prefix = stderr_prefix
        self._on_message = on_message
        self._on_bad_line = on_bad_line
        self._on_exit = on_exit
        self._on_crash = on_crash
        self._failed = failed
        self._wq: collections.deque[bytes | tuple[bytes, memoryview] | None] = collections.deque()
        self._wq_bytes = 0
        self._wcond = threading.Condition()
        self.write_broken = False  # the child stopped reading its input
        self.last_stderr = ""
        self.popen: subprocess.Popen[bytes] | None = None
        self.threads: list[threading.Thread] = []

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        if self.popen is None:
            self.start()
        assert self.popen is not None
        return self.popen

    def start(self) -> None:
        try:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self._env,
                bufsize=CHUNK,
                # its own process group: Ctrl-C in the terminal stops replaygate gracefully,
                # which then ends the middleware's input; the middleware is not killed
                # mid-message by the same signal
                process_group=0,
            )
        except OSError as e:
            raise MiddlewareError(
                f"middleware {self._command!r} could not start: {e.strerror or e}"
            ) from None
        assert self.popen.stdin and self.popen.stdout and self.popen.stderr
        for f in (self.popen.stdin, self.popen.stdout):
            try:
                import fcntl

                fcntl.fcntl(f.fileno(), _F_SETPIPE_SZ, CHUNK)
            except (OSError, ImportError):
                pass
        self.threads = [
            threading.Thread(target=self._read_stdout, name="mw-stdout", daemon=True),
            threading.Thread(target=self._read_stderr, name="mw-stderr", daemon=True),
            threading.Thread(target=self._write_stdin, name="mw-stdin", daemon=True),
        ]
        for t in self.threads:
            t.start()

    # -- writing -------------------------------------------------------------------------
    def send(self, typ: int, wire_id: str, ts: int, lat: int, raw: bytes, block: bool) -> bool:
        """Queue one message; False when the queue is full and ``block`` is false (or the
        stage has failed while waiting)."""
        head = f"{typ} {wire_id} {ts} {lat}\n".encode()
        if len(raw) <= CHUNK:
            line = binascii.hexlify(head + raw) + b"\n"
            return self._enqueue([line], len(line) // 2, block)
        return self._enqueue([(head, memoryview(raw))], len(head) + len(raw), block)

    def end_input(self) -> None:
        """The writer closes the child's stdin once everything queued is written."""
        with self._wcond:
            self._wq.append(None)
            self._wcond.notify_all()

    def _enqueue(
        self, items: list[bytes | tuple[bytes, memoryview]], size: int, block: bool
    ) -> bool:
        with self._wcond:
            while self._wq and self._wq_bytes + size > self._max_bytes:
                if not block or self._failed():
                    return False
                self._wcond.wait(0.5)
            self._wq.extend(items)
            self._wq_bytes += size
            self._wcond.notify_all()
        return True

    def _write_stdin(self) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            while True:
                with self._wcond:
                    while not self._wq:
                        self._wcond.wait()
                    item = self._wq.popleft()
                if item is None:
                    break
                if isinstance(item, bytes):
                    stdin.write(item)
                    n = len(item) // 2
                else:
                    head, body = item
                    stdin.write(binascii.hexlify(head))
                    for i in range(0, len(body), CHUNK):
                        stdin.write(binascii.hexlify(body[i : i + CHUNK]))
                    stdin.write(b"\n")
                    n = len(head) + len(body)
                with self._wcond:
                    self._wq_bytes -= n
                    idle = not self._wq
                    self._wcond.notify_all()
                if idle:
                    stdin.flush()
        except (OSError, ValueError):
            self.write_broken = True  # the child stopped reading: reported by the reader
        finally:
            try:
                stdin.close()
            except OSError:
                pass

    # -- reading -------------------------------------------------------------------------
    def _read_stdout(self) -> None:
        try:
            self._read_stdout_loop()
        except BaseException as e:  # a bug here must not leave the pipeline waiting forever
            self._on_crash(e)
            raise

    def _read_stdout_loop(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            try:
                line = out.readline()
            except (OSError, ValueError):
                line = b""
            if not line:
                break
            if not line.strip():
                continue
            try:
                msg = decode_message(line)
            except (ValueError, UnicodeDecodeError) as e:
                self._on_bad_line(line, e)
                continue
            self._on_message(msg)
        self._on_exit(self.proc.wait())
        with self._wcond:
            self._wcond.notify_all()

    def join_writer(self, timeout: float) -> None:
        self.threads[2].join(timeout=timeout)

    def _read_stderr(self) -> None:
        err = self.proc.stderr
        assert err is not None
        for raw in iter(err.readline, b""):
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            if text.strip():
                self.last_stderr = text.strip()
            try:
                sys.stderr.write(f"{self._prefix}{text}\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass

    # -- stopping ------------------------------------------------------------------------
    def terminate(self) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def join(self, timeout: float) -> None:
        for t in self.threads:
            t.join(timeout=timeout)

    def close_pipes(self) -> None:
        if self.popen is None:
            return
        for f in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
