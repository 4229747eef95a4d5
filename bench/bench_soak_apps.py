"""Soak on real applications: does the verdict hold on real open-source web apps?

Each app is installed from PyPI in two versions with documented breaking changes, each in its
own venv under a cache directory (``~/.cache/replaygate-soak``, or ``--cache DIR``; never the
project's venv), and run on 127.0.0.1:

- **datasette** 0.64.8 -> 1.0a19: HTML table and row pages (with "Queries took N ms"), JSON
  (1.0: rows became objects, ``ok``/``next`` keys, ``columns``/``database``/``table`` dropped
  unless asked for), ``.json`` row URLs, CSV exports, the ``/-/messages`` form with its signed
  CSRF token and cookie, a signed ``ds_messages`` cookie.
- **roundup** 2.2.0 -> 2.4.0 (issue tracker, served through its WSGI handler): login form with
  a server-side ``@csrf`` token, a session cookie, a new-issue form, issue pages, the
  ``export_csv`` action, the REST JSON API. Documented in roundup's upgrading.txt for 2.4:
  "Disable spellcheck on all password fields" (``spellcheck="false"``) and "Add new
  classhelper to your templates" (the ``<roundup-classhelper>`` web component).

One *run* = start production, a baseline copy and a candidate; record realistic clients
(sessions with cookies, forms with CSRF tokens, HTML, JSON, CSV) through ``replaygate proxy``
in front of production; ``replaygate replay --baseline`` to the candidate and the baseline
copy; read the verdict. The candidate is the new version (must FAIL, with reasons naming the
documented changes) or an identical copy (must PASS every run). ``--burner`` keeps every core
busy with spinning processes beside the targets while recording and replaying.

    python -m bench soak_apps                      # both apps: 1 upgrade run + 3 identical runs
    python -m bench soak_apps --runs=20 --burner   # the "Done when" figure
    python -m bench soak_apps --apps=datasette --runs=5

Prints one line per run and a table; exits 1 if any expectation failed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

BIN = str(Path(sys.executable).parent / "replaygate")
SECRET = "replaygate-soak-shared-secret"  # the same deploy secret on every copy
# browsing users per run: enough requests per endpoint for the gate to judge each one
USERS = {"datasette": 8, "roundup": 8}


# -- helpers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes] | None, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds:.0f}s")


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def venv(cache: Path, spec: str) -> Path:
    """A venv with ``spec`` (``pkg==version``) installed, made once and kept in ``cache``."""
    d = cache / spec.replace("==", "-")
    py = d / "bin" / "python"
    if (d / ".installed").exists():
        return d
    print(f"  installing {spec} into {d} ...", flush=True)
    shutil.rmtree(d, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(d)], check=True)
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", spec], check=True
    )
    (d / ".installed").touch()
    return d


class Browser:
    """One user: a keep-alive connection through the proxy, a cookie jar, forms."""

    def __init__(self, port: int, headers: dict[str, str] | None = None) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}
        self.headers = {"User-Agent": "soak-browser/1.0", **(headers or {})}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.statuses: list[int] = []

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], str]:
        h = dict(self.headers)
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        h.update(headers or {})
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=h)
                r = self.conn.getresponse()
                data = r.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt:
                    raise
        for k, v in r.getheaders():
            if k.lower() == "set-cookie":
                name, _, rest = v.partition("=")
                value = rest.split(";", 1)[0]
                if value and "max-age=0" not in v.lower() and "1970" not in v:
                    self.cookies[name.strip()] = value
                else:
                    self.cookies.pop(name.strip(), None)
        if r.getheader("connection", "").lower() == "close" or r.version == 10:
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        self.statuses.append(r.status)
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data.decode("utf-8", "replace")

    def get(self, path: str) -> str:
        return self.request("GET", path)[2]

    def post_form(self, path: str, fields: dict[str, str]) -> tuple[int, dict[str, str], str]:
        body = urlencode(fields).encode()
        return self.request(
            "POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"}
        )

    def close(self) -> None:
        self.conn.close()


def hidden(html: str, name: str) -> str:
    m = re.search(
        r'<input[^>]*name="' + re.escape(name) + r'"[^>]*value="([^"]*)"', html, re.S
    ) or re.search(r'<input[^>]*value="([^"]*)"[^>]*name="' + re.escape(name) + '"', html, re.S)
    return m.group(1) if m else ""


# -- apps --------------------------------------------------------------------------------------


@dataclass
class App:
    name: str
    old: str
    new: str
    # reasons of the upgrade run must mention each of these (regexes): the documented changes
    expect: list[tuple[str, str]]
    prepare: Callable[[Path, Path], Path]  # (venv, workdir) -> data dir/file for serve
    serve: Callable[[Path, Path, int], list[str]]  # (venv, data, port) -> command
    traffic: Callable[[int, int], None]  # (proxy port, seed)
    env: dict[str, str] = field(default_factory=dict)


# datasette ---------------------------------------------------------------------------------


def ds_prepare(_venv: Path, work: Path) -> Path:
    db = work / "shop.db"
    if db.exists():
        return db
    c = sqlite3.connect(db)
    c.execute("create table customers (id integer primary key, name text, city text)")
    c.execute(
        "create table orders (id integer primary key, customer_id integer references "
        "customers(id), total real, status text, created text)"
    )
    cities = ["Paris", "Oslo", "Lima", "Kyoto"]
    c.executemany(
        "insert into customers values (?,?,?)",
        [(i, f"Customer {i}", cities[i % 4]) for i in range(1, 61)],
    )
    c.executemany(
        "insert into orders values (?,?,?,?,?)",
        [
            (
                i,
                i % 60 + 1,
                round(i * 3.17, 2),
                ["new", "paid", "shipped"][i % 3],
                f"2026-{i % 12 + 1:02d}-{i % 28 + 1:02d}",
            )
            for i in range(1, 1001)
        ],
    )
    c.commit()
    c.close()
    return db


def ds_serve(v: Path, data: Path, port: int) -> list[str]:
    return [
        str(v / "bin" / "datasette"),
        "serve",
        str(data),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "--setting",
        "num_sql_threads",
        "2",
    ]


def ds_traffic(port: int, seed: int) -> None:
    import random

    rnd = random.Random(seed)
    for user in range(USERS["datasette"]):
        b = Browser(port, {"Accept": "text/html,application/json"})
        b.get("/")
        b.get("/shop")
        b.get("/shop/orders")
        b.get(f"/shop/orders?_sort_desc=total&status={['new', 'paid'][user % 2]}")
        b.get("/shop/customers")
        for _ in range(12):
            i = rnd.randint(1, 1000)
            b.get(f"/shop/orders/{i}")
            b.get(f"/shop/orders/{i}.json")
            b.get(f"/shop/customers/{i % 60 + 1}.json")
        b.get("/shop/orders.json?_size=20")
        b.get(f"/shop/orders.json?_size=10&status={['new', 'paid', 'shipped'][user % 3]}")
        b.get("/shop/orders.json?_shape=array&_size=5")
        b.get("/shop/orders.csv?_size=50")
        b.get(f"/shop/orders.csv?_size=20&customer_id={user + 1}")
        b.get("/shop.json?sql=select+city,+count(*)+from+customers+group+by+city")
        b.get("/shop.csv?sql=select+id,+name+from+customers+order+by+id+limit+15")
        # a CSRF form: GET sets the signed ds_csrftoken cookie and the hidden field
        page = b.get("/-/messages")
        token = hidden(page, "csrftoken")
        b.post_form(
            "/-/messages",
            {"message": f"hello from user {user}", "message_type": "INFO", "csrftoken": token},
        )
        b.get("/shop/orders")  # shows the message (signed ds_messages cookie)
        b.close()


# roundup -----------------------------------------------------------------------------------

RU_SERVE = """
import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server
from roundup.cgi.wsgi_handler import RequestDispatcher

class Quiet(WSGIRequestHandler):
    def log_message(self, *a):
        pass

make_server("127.0.0.1", int(sys.argv[2]), RequestDispatcher(sys.argv[1]),
            handler_class=Quiet).serve_forever()
"""

RU_SEED = """
import sys
import roundup.instance
from roundup.password import Password
t = roundup.instance.open(sys.argv[1])
db = t.open("admin")
for i in range(1, 41):
    db.issue.create(title=f"Soak issue {i}: printer on floor {i % 7} is on fire",
                    priority=str(i % 4 + 1), status=str(i % 3 + 1))
db.user.create(username="alice", password=Password("alice-pw", config=db.config), roles="User",
               address="alice@example.com")
db.commit()
db.close()
"""


def ru_prepare(v: Path, work: Path) -> Path:
    home = work / f"tracker-{v.name}"
    if (home / ".seeded").exists():
        return home
    shutil.rmtree(home, ignore_errors=True)
    admin = str(v / "bin" / "roundup-admin")
    opts = "tracker_web=http://127.0.0.1:8080/,mail_domain=example.com,mail_host=localhost"
    subprocess.run(
        [admin, "-i", str(home), "install", "classic", "sqlite", opts],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    cfg = home / "config.ini"
    text = cfg.read_text()
    # the copies sit behind replay targets with other Host/Origin headers: keep the token check
    for hdr in ("referer", "origin", "x-forwarded-host", "host"):
        text = re.sub(
            rf"^csrf_enforce_header_{re.escape(hdr)} = .*$",
            f"csrf_enforce_header_{hdr} = no",
            text,
            flags=re.M | re.I,
        )
    cfg.write_text(text)
    subprocess.run(
        [admin, "-i", str(home), "initialise", "admin-pw"], check=True, stdout=subprocess.DEVNULL
    )
    subprocess.run([str(v / "bin" / "python"), "-c", RU_SEED, str(home)], check=True)
    (home / ".seeded").touch()
    return home


def ru_serve(v: Path, data: Path, port: int) -> list[str]:
    return [str(v / "bin" / "python"), "-c", RU_SERVE, str(data), str(port)]


def ru_traffic(port: int, seed: int) -> None:
    import random

    rnd = random.Random(seed)
    for user in range(USERS["roundup"]):
        b = Browser(port)
        home = b.get("/")
        b.get("/issue?@columns=id,title,status,priority&@sort=-activity&@pagesize=20")
        for _ in range(6):
            b.get(f"/issue{rnd.randint(1, 40)}")
        b.get("/issue?@action=export_csv&@columns=id,title,priority&@filter=status&status=1")
        b.get("/rest/data/issue?@fields=title,status&@page_size=10")
        b.get(f"/rest/data/issue/{rnd.randint(1, 40)}")
        b.get("/user?@template=register")
        # log in through the form (server-side @csrf token, session cookie)
        b.post_form(
            "/",
            {
                "__login_name": "alice" if user else "admin",
                "__login_password": "alice-pw" if user else "admin-pw",
                "@action": "Login",
                "@csrf": hidden(home, "@csrf"),
                "__came_from": "http://127.0.0.1:8080/",
            },
        )
        b.get("/")
        form = b.get("/issue?@template=item")
        _status, headers, _ = b.post_form(
            "/issue",
            {
                "title": f"Soak created issue {seed}-{user}",
                "priority": "3",
                "@action": "new",
                "@csrf": hidden(form, "@csrf"),
                "@note": "created by the soak client",
            },
        )
        loc = headers.get("location", "")
        m = re.search(r"/(issue\d+)", loc)
        if m:
            b.get("/" + m.group(1))
        b.get("/user?@template=item" if not user else "/issue?@filter=creator&creator=alice")
        b.get("/?@action=logout")
        b.close()


APPS = {
    "datasette": App(
        "datasette",
        "datasette==0.64.8",
        "datasette==1.0a19",
        expect=[
            ("rows became objects", r"body:\$\.rows\[\*\] type"),
            ("columns/database/table dropped", r"body:\$\.(columns|database|table) missing"),
            ("ok key added", r"body:\$\.ok extra"),
        ],
        prepare=ds_prepare,
        serve=ds_serve,
        traffic=ds_traffic,
        env={"DATASETTE_SECRET": SECRET},
    ),
    "roundup": App(
        "roundup",
        "roundup==2.2.0",
        "roundup==2.4.0",
        expect=[
            ("2.4 'Disable spellcheck on all password fields'", r"input\[\d\]/@spellcheck extra"),
            (
                "2.4 'Add new classhelper to your templates' (<roundup-classhelper>)",
                r"/roundup-classhelper",
            ),
        ],
        prepare=ru_prepare,
        serve=ru_serve,
        traffic=ru_traffic,
    ),
}


# -- one run -----------------------------------------------------------------------------------


def _burn() -> None:  # pragma: no cover - runs in a child process
    x = 0
    while True:
        x = (x * 31 + 7) % 1_000_003


@contextmanager
def burner(on: bool) -> Iterator[None]:
    procs: list[multiprocessing.Process] = []
    if on:
        for _ in range(os.cpu_count() or 2):
            p = multiprocessing.Process(target=_burn, daemon=True)
            p.start()
            procs.append(p)
    try:
        yield
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.join(10)


@contextmanager
def serving(cmd: list[str], port: int, env: dict[str, str], log: Path) -> Iterator[int]:
    with open(log, "ab") as out:
        p = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            start_new_session=True,
        )
    try:
        wait_port(port, p)
        yield p.pid
    finally:
        stop(p)


def one_run(
    app: App, cache: Path, work: Path, *, upgrade: bool, seed: int, burn: bool
) -> dict[str, Any]:
    old = venv(cache, app.old)
    new = venv(cache, app.new) if upgrade else old
    d_old = app.prepare(old, work)
    d_new = app.prepare(new, work) if upgrade else d_old
    run = Path(tempfile.mkdtemp(prefix=f"{app.name}-", dir=work))

    # every copy starts from the same data: copy it per run (forms write to it)
    def copy(src: Path, tag: str) -> Path:
        (run / tag).mkdir()
        dst = run / tag / src.name
        (shutil.copytree if src.is_dir() else shutil.copyfile)(src, dst)
        return dst

    ports = {k: free_port() for k in ("prod", "base", "cand", "proxy")}
    cap = run / "capture.gor"
    with (
        burner(burn),
        serving(
            app.serve(old, copy(d_old, "prod"), ports["prod"]),
            ports["prod"],
            app.env,
            run / "prod.log",
        ),
        serving(
            app.serve(old, copy(d_old, "base"), ports["base"]),
            ports["base"],
            app.env,
            run / "base.log",
        ),
        serving(
            app.serve(new, copy(d_new, "cand"), ports["cand"]),
            ports["cand"],
            app.env,
            run / "cand.log",
        ),
    ):
        with open(run / "proxy.log", "wb") as plog:
            proxy = subprocess.Popen(
                [
                    BIN,
                    "proxy",
                    "--listen",
                    f"127.0.0.1:{ports['proxy']}",
                    "--upstream",
                    f"http://127.0.0.1:{ports['prod']}",
                    "-o",
                    str(cap),
                    "--force",
                ],
                stdout=subprocess.DEVNULL,
                stderr=plog,
            )
        try:
            wait_port(ports["proxy"], proxy)
            t0 = time.monotonic()
            app.traffic(ports["proxy"], seed)
            rec_s = time.monotonic() - t0
        finally:
            stop(proxy, signal.SIGINT)
        rep = subprocess.run(
            [
                BIN,
                "replay",
                str(cap),
                "--target",
                f"http://127.0.0.1:{ports['cand']}",
                "--baseline",
                f"http://127.0.0.1:{ports['base']}",
                "--report",
                str(run / "report"),
                "--no-progress",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    summary_path = run / "report" / "report.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    from replaygate.report._rank import ranked_reasons

    ranked = [r for _sev, r in ranked_reasons(summary)] if summary else []
    return {
        "rc": rep.returncode,
        "verdict": summary.get("verdict"),
        "reasons": ranked or [rep.stderr.strip()[-500:]],
        "totals": summary.get("totals", {}),
        "record_s": rec_s,
        "dir": str(run),
        "summary": summary,
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench soak_apps")
    ap.add_argument("--apps", default="datasette,roundup")
    ap.add_argument("--runs", type=int, default=3, help="identical-copy runs per app")
    ap.add_argument("--burner", action="store_true", help="spin every core beside the targets")
    ap.add_argument("--no-upgrade", action="store_true", help="only identical-copy runs")
    ap.add_argument(
        "--cache",
        default=os.environ.get("REPLAYGATE_SOAK_CACHE")
        or str(Path.home() / ".cache" / "replaygate-soak"),
    )
    ap.add_argument("--keep", action="store_true", help="keep the run directories")
    args = ap.parse_args(argv)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    failed = 0
    table: list[str] = []
    try:
        for name in args.apps.split(","):
            app = APPS[name.strip()]
            if not args.no_upgrade:
                r = one_run(app, cache, work, upgrade=True, seed=1, burn=args.burner)
                text = "\n".join(r["reasons"])
                missing = [label for label, rx in app.expect if not re.search(rx, text)]
                ok = r["rc"] == 1 and r["verdict"] == "fail" and not missing
                failed += not ok
                print(
                    f"{app.name} {app.old} -> {app.new}: {r['verdict']} (rc {r['rc']}, "
                    f"{r['totals'].get('replayed', 0)} replayed) {'OK' if ok else 'UNEXPECTED'}"
                )
                for reason in r["reasons"][:12]:
                    print(f"    - {reason[:240]}")
                for label in missing:
                    print(f"    ! no reason names: {label}")
                table.append(
                    f"{app.name:10s} upgrade   {'1/1' if ok else '0/1'} FAIL naming the documented changes"
                )
            passes = 0
            for i in range(args.runs):
                r = one_run(app, cache, work, upgrade=False, seed=100 + i, burn=args.burner)
                ok = r["rc"] == 0 and r["verdict"] == "pass"
                passes += ok
                print(
                    f"{app.name} identical copy run {i + 1}/{args.runs}: {r['verdict']} "
                    f"(rc {r['rc']}, {r['totals'].get('replayed', 0)} replayed, recorded in "
                    f"{r['record_s']:.1f}s{', burner' if args.burner else ''})"
                )
                if not ok:
                    for reason in r["reasons"][:8]:
                        print(f"    - {reason[:240]}")
                    print(f"    run directory: {r['dir']}")
                    args.keep = True
            failed += passes != args.runs
            table.append(
                f"{app.name:10s} identical {passes}/{args.runs} PASS"
                + (" (with CPU burner)" if args.burner else "")
            )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"run directories kept under {work}")
    print("\n".join(table))
    return 1 if failed else 0
