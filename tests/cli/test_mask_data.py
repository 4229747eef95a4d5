"""``replaygate mask-data``: help, happy path, bad inputs, and the end-to-end promise: a
masked capture replayed against an app whose database was loaded from the masked dump finds
its records."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from click.testing import CliRunner

from replaygate.cli.mask_data import command
from replaygate.formats import ReadOptions, open_reader, open_writer
from replaygate.model import Exchange, Request, Response

KEY = "e2e-mask-key"
USERS = [
    ("alice.smith@corp-mail.io", "hunter2-Alice", "Alice Smith"),
    ("bob.jones@corp-mail.io", "s3cret;Bob's", "Bob Jones"),
    ("carol@corp-mail.io", "pw\\carol", "Carol"),
]


def test_help() -> None:
    r = CliRunner().invoke(command, ["--help"])
    assert r.exit_code == 0 and "INPUT" in r.output and "--mask-key-file" in r.output


def _rg(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "replaygate", *args],
        capture_output=True,
        cwd=cwd,
        env={**os.environ, "REPLAYGATE_MASK_KEY": KEY},
        timeout=120,
    )


def test_happy_path_counts_and_json(tmp_path: Path) -> None:
    (tmp_path / "u.csv").write_text("id,email,password\n1,a.b@corp.io,pw1\n2,c@d.io,pw2\n")
    r = _rg("mask-data", "u.csv", "-o", "m.csv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert b"mask-data: 4 values masked in 2 of 2 rows (email=2, field=2)" in r.stderr
    assert b"corp.io" not in (tmp_path / "m.csv").read_bytes()
    r = _rg("mask-data", "u.csv", "-o", "m2.jsonl", "--format", "csv", "--json", cwd=tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["findings"] == {"email": 2, "field": 2}
    assert (tmp_path / "m2.jsonl").read_bytes() == (tmp_path / "m.csv").read_bytes()


@pytest.mark.parametrize(
    ("files", "args", "message"),
    [
        ({}, ["nope.csv", "-o", "x.csv"], "nope.csv: no such file"),
        ({"a.parquet": "x"}, ["a.parquet", "-o", "x.csv"], "unknown data file extension"),
        ({"a.jsonl": '{"a":1}\nnot json\n'}, ["a.jsonl", "-o", "x.jsonl"], "line 2: not JSON"),
        ({"a.sql": "INSERT INTO t VALUES ('x);\n"}, ["a.sql", "-o", "x.sql"], "quoted string"),
        ({"a.csv": "a\n1\n"}, ["a.csv", "-o", "a.csv"], "must not be the input"),
        ({"a.csv": "a\n1\n"}, ["a.csv", "-o", "x.csv", "--mask-key-file", "k"], "mask-key-file"),
        ({"a.csv": b"a\n\xff\xfe\n"}, ["a.csv", "-o", "x.csv"], None),
    ],
)
def test_bad_input_is_one_line_exit_2(
    tmp_path: Path, files: dict[str, str | bytes], args: list[str], message: str | None
) -> None:
    for name, data in files.items():
        p = tmp_path / name
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
    r = _rg("mask-data", *args, cwd=tmp_path)
    if message is None:  # undecodable bytes are carried through, not an error
        assert r.returncode == 0, r.stderr
        return
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert err.startswith("replaygate: error: ") and err.count("\n") == 1, err
    assert message in err and "Traceback" not in err


# -- end to end: a real app on a real (sqlite) database ------------------------------------------


class _App(BaseHTTPRequestHandler):
    """GET /users?email=E -> 200 + the user, 404 if unknown; POST /login {email, password}."""

    protocol_version = "HTTP/1.1"
    server: _AppServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, doc: object) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.server.db_path)

    def do_GET(self) -> None:
        u = urlsplit(self.path)
        email = parse_qs(u.query).get("email", [""])[0]
        with self._db() as db:
            row = db.execute(
                "SELECT id, email, name FROM users WHERE email = ?", (email,)
            ).fetchone()
        if u.path != "/users" or row is None:
            self._send(404, {"error": "not found"})
        else:
            self._send(200, {"id": row[0], "email": row[1], "name": row[2]})

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        doc = json.loads(self.rfile.read(n) or b"{}")
        with self._db() as db:
            row = db.execute(
                "SELECT id FROM users WHERE email = ? AND password = ?",
                (doc.get("email"), doc.get("password")),
            ).fetchone()
        self._send(200 if row else 401, {"ok": row is not None})


class _AppServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, db_path: Path) -> None:
        super().__init__(("127.0.0.1", 0), _App)
        self.db_path = str(db_path)


def _serve(db_path: Path) -> Iterator[_AppServer]:
    s = _AppServer(db_path)
    t = threading.Thread(target=s.serve_forever, daemon=True)
    t.start()
    try:
        yield s
    finally:
        s.shutdown()
        s.server_close()
        t.join(5)


def _prod_db(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE, password TEXT, name TEXT)"
    )
    db.executemany("INSERT INTO users (email, password, name) VALUES (?, ?, ?)", USERS)
    db.commit()
    db.close()


def _call(port: int, raw: bytes) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(raw)
        out = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                return out
            out += chunk


def test_masked_capture_finds_its_records_in_the_masked_database(tmp_path: Path) -> None:
    _prod_db(tmp_path / "prod.db")
    # 1. production traffic, recorded exactly as sent and answered
    requests = []
    for email, password, _ in USERS:
        requests.append(
            f"GET /users?email={quote(email)} HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n"
        )
        body = json.dumps({"email": email, "password": password})
        requests.append(
            "POST /login HTTP/1.1\r\nHost: app\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"
        )
    w = open_writer(tmp_path / "prod.gor")
    for prod in _serve(tmp_path / "prod.db"):
        for i, raw in enumerate(requests):
            resp = _call(prod.server_address[1], raw.encode())
            assert resp.startswith(b"HTTP/1.1 200"), resp[:100]
            w.write(
                Exchange(
                    id=f"{i:040x}",
                    request=Request(raw.encode(), ts_first_ns=1_700_000_000_000_000_000 + i),
                    response=Response(resp, ts_first_ns=1_700_000_000_100_000_000 + i),
                )
            )
    w.close()
    # 2. the capture and the database dump, masked with the same key
    r = _rg("convert", "prod.gor", "masked.gor", "--mask", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (tmp_path / "dump.sql").write_text(
        "\n".join(sqlite3.connect(tmp_path / "prod.db").iterdump()) + "\n"
    )
    r = _rg("mask-data", "dump.sql", "-o", "masked.sql", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    masked_sql = (tmp_path / "masked.sql").read_text()
    for email, password, _ in USERS:
        assert email not in masked_sql and password.replace("'", "''") not in masked_sql
    # 3. staging's database is loaded from the masked dump; replay the masked capture into it
    staging_db = sqlite3.connect(tmp_path / "staging.db")
    staging_db.executescript(masked_sql)
    staging_db.close()
    for staging in _serve(tmp_path / "staging.db"):
        r = _rg(
            "replay",
            "masked.gor",
            "--target",
            f"http://127.0.0.1:{staging.server_address[1]}",
            "--max",
            "--output",
            "replayed.gor",
            cwd=tmp_path,
        )
        assert r.returncode in (0, 1), r.stderr
    replayed = list(open_reader(tmp_path / "replayed.gor", ReadOptions()))
    assert len(replayed) == len(requests)
    statuses = sorted(
        (ex.request.method, ex.replayed.status if ex.replayed else 0) for ex in replayed
    )
    assert statuses == [("GET", 200)] * 3 + [("POST", 200)] * 3, statuses


def test_no_partial_output_on_bad_input(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"email": "a@b.io"}\n' * 50 + "oops\n")
    (tmp_path / "b.sql.gz").write_bytes(b"not gzip at all")
    r = _rg("mask-data", "a.jsonl", "-o", "out.jsonl", cwd=tmp_path)
    assert r.returncode == 2 and b"line 51: not JSON" in r.stderr
    r = _rg("mask-data", "b.sql.gz", "-o", "out.sql", cwd=tmp_path)
    assert r.returncode == 2 and b"damaged or truncated gzip data" in r.stderr, r.stderr
    assert b"not gzip" not in r.stderr
    r = _rg("mask-data", "a.jsonl", "-o", "no/such/dir/out.jsonl", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count(b"\n") == 1, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl", "b.sql.gz"]
