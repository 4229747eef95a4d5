"""mask-data: data files masked with the traffic rules and pseudonyms, format by format,
on real dumps (python's sqlite3 iterdump, the sqlite3 CLI, a throwaway PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.errors import FormatError, InputError
from replaygate.stages._mask_data import DataMasker, data_format, mask_data_file, mask_text
from replaygate.stages.mask import MaskConfig, MaskStage
from replaygate.testing import make_exchange

KEY = b"data-key"
USERS = [
    (
        1,
        "alice.smith@corp-mail.io",
        "hunter2",
        1234,
        "card 4111 1111 1111 1111",
        '{"token": "t0k3n-abc"}',
    ),
    (2, "bob@corp-mail.io", "it's;a\npass", None, "call +44 20 7946 0958", None),
    (3, "carol@corp-mail.io", "x\\y", 42, "nothing secret", "{}"),
]
SECRETS = [
    "alice.smith@corp-mail.io",
    "bob@corp-mail.io",
    "carol@corp-mail.io",
    "hunter2",
    "4111 1111 1111 1111",
    "t0k3n-abc",
    "+44 20 7946 0958",
]


def masker() -> DataMasker:
    return DataMasker(MaskStage(MaskConfig(), KEY).masker)


def traffic_pseudonyms(email: str, password: str) -> tuple[str, str]:
    """What traffic masking makes of this user's e-mail (in a query) and password (JSON)."""
    ex = make_exchange(
        "POST",
        f"/users?email={quote(email)}",
        request_headers=[("Content-Type", "application/json")],
        request_body=json.dumps({"password": password}).encode(),
    )
    out = MaskStage(MaskConfig(), KEY).mask_exchange(ex)
    q = out.request.target.split("email=", 1)[1]
    from urllib.parse import unquote

    return unquote(q), json.loads(out.request.body())["password"]


def assert_no_secret(text: str) -> None:
    for s in SECRETS:
        assert s not in text, s


# -- formats ------------------------------------------------------------------------------------


def test_csv_columns_act_as_field_names_and_pseudonyms_match_traffic() -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["id", "email", "password", "pin", "note", "prefs"])
    for u in USERS:
        w.writerow(["" if v is None else v for v in u])
    dm = masker()
    out = mask_text(dm, buf.getvalue(), "csv")
    assert_no_secret(out)
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["id", "email", "password", "pin", "note", "prefs"]
    assert out.endswith("\r\n") and rows[1][0] == "1" and rows[2][3] == ""
    email, password = traffic_pseudonyms(USERS[0][1], USERS[0][2])
    assert rows[1][1] == email and rows[1][2] == password
    assert rows[1][3].isdigit() and rows[1][3] != "1234"  # a number stays a number
    assert json.loads(rows[1][5])["token"] != "t0k3n-abc"  # JSON in a cell, by key
    assert dm.stats.rows == 3 and dm.stats.findings["email"] == 3
    again = masker()
    assert mask_text(again, out, "csv") == out  # idempotent
    assert not again.stats.findings


def test_jsonl_and_json_array_stream_by_record() -> None:
    recs = [dict(zip(["id", "email", "password"], u[:3], strict=True)) for u in USERS]
    jl = "".join(json.dumps(r) + "\n" for r in recs) + "\n"
    out = mask_text(masker(), jl, "jsonl")
    assert_no_secret(out)
    got = [json.loads(line) for line in out.splitlines() if line]
    email, password = traffic_pseudonyms(USERS[0][1], USERS[0][2])
    assert got[0]["email"] == email and got[0]["password"] == password
    arr = mask_text(masker(), json.dumps(recs, indent=2), "json")
    assert json.loads(arr) == got
    assert mask_text(masker(), "[]", "json") == "[]\n"
    doc = mask_text(masker(), json.dumps({"users": recs}), "json")
    assert json.loads(doc)["users"] == got


def test_sql_dialects_literals_escapes_and_functions() -> None:
    sql = (
        "CREATE TABLE `users` (\n  `id` int NOT NULL,\n  `email` varchar(80),\n"
        "  `password` varchar(80),\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB;\n"
        "INSERT INTO `users` VALUES (1,'alice.smith@corp-mail.io','hunter2'),"
        "(2,'bob@corp-mail.io','it\\'s;a\\npass');\n"
    )
    out = mask_text(masker(), "-- MySQL dump 10.13\n" + sql, "sql")
    assert_no_secret(out)
    assert out.count("@example.com") == 2 and "\\'" not in out.split("VALUES", 1)[1][:60]
    pg = (
        "SET standard_conforming_strings = on;\n"
        "INSERT INTO public.users (id, email, password) VALUES (1, 'alice.smith@corp-mail.io',"
        " E'hunter2'), (2, 'bob@corp-mail.io', 'it''s;a\nmulti-line ; pass');\n"
        "COPY public.users (id, email, password, pin) FROM stdin;\n"
        "3\tcarol@corp-mail.io\thunter2\t1234\n4\t\\N\tx\\ty\t\\N\n\\.\n"
        "SELECT pg_catalog.setval('public.users_id_seq', 4, true);\n"
    )
    dm = masker()
    out = mask_text(dm, pg, "sql")
    assert_no_secret(out)
    assert "4\t\\N\t" in out and "\\.\n" in out and "setval('public.users_id_seq', 4" in out
    email, password = traffic_pseudonyms(USERS[0][1], USERS[0][2])
    assert f"'{email}'" in out and f"E'{password}'" in out and f"\t{email}\t" not in out
    assert dm.stats.rows == 4
    assert mask_text(masker(), out, "sql") == out


@pytest.mark.parametrize(
    ("fmt", "text", "what"),
    [
        ("jsonl", '{"a": 1}\n{"a": \n', "line 2: not JSON"),
        ("json", '[{"a": 1}, {"a": "x}', "unterminated"),
        ("json", '[{"a": 1}', "not closed"),
        ("csv", 'a,b\n1,"x\n', "bad CSV"),
        ("sql", "INSERT INTO t VALUES ('abc);\n", "ends inside a quoted string"),
        ("sql", "COPY t (a) FROM stdin;\n1\n", "not closed"),
    ],
)
def test_bad_input_is_one_format_error(fmt: str, text: str, what: str) -> None:
    with pytest.raises(FormatError, match=what):
        mask_text(masker(), text, fmt)


def test_data_format_by_extension() -> None:
    assert data_format("a.sql.gz") == "sql" and data_format("x.NDJSON") == "jsonl"
    with pytest.raises(InputError, match="unknown data file extension"):
        data_format("a.parquet")


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20),
        min_size=1,
        max_size=5,
    )
)
def test_sql_strings_round_trip(values: list[str]) -> None:
    """Whatever a string holds (quotes, backslashes, semicolons, newlines), the dump stays
    parseable and unmasked strings keep their exact bytes."""
    lits = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    sql = f"INSERT INTO t (a) VALUES ({lits});\n"
    out = mask_text(
        DataMasker(MaskStage(MaskConfig(detectors=[], default_fields=False), KEY).masker),
        sql,
        "sql",
    )
    assert out == sql


# -- real dumps ---------------------------------------------------------------------------------


def _sqlite_db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT UNIQUE, password TEXT, pin INTEGER,"
        " note TEXT, prefs TEXT)"
    )
    db.executemany("INSERT INTO users VALUES (?,?,?,?,?,?)", USERS)
    db.commit()
    return db


def _check_loaded(db: sqlite3.Connection) -> None:
    rows = db.execute(
        "SELECT id, email, password, pin, note, prefs FROM users ORDER BY id"
    ).fetchall()
    assert [r[0] for r in rows] == [1, 2, 3]
    assert_no_secret(repr(rows))
    email, password = traffic_pseudonyms(USERS[0][1], USERS[0][2])
    assert rows[0][1] == email and rows[0][2] == password
    assert rows[1][3] is None and isinstance(rows[0][3], int)


def test_sqlite_iterdump_masked_and_loaded(tmp_path: Path) -> None:
    db = _sqlite_db(tmp_path / "prod.db")
    dump = tmp_path / "dump.sql"
    dump.write_text("\n".join(db.iterdump()) + "\n")
    stats = mask_data_file(str(dump), str(tmp_path / "masked.sql"), key_file=_key(tmp_path))
    assert stats.rows == 3 and stats.findings["email"] == 3
    new = sqlite3.connect(tmp_path / "staging.db")
    new.executescript((tmp_path / "masked.sql").read_text())
    _check_loaded(new)


def _key(tmp_path: Path) -> str:
    p = tmp_path / "key"
    p.write_bytes(KEY)
    return str(p)


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="the sqlite3 CLI is not installed")
def test_sqlite3_cli_dump_masked_and_loaded(tmp_path: Path) -> None:
    _sqlite_db(tmp_path / "prod.db").close()
    dump = subprocess.run(
        ["sqlite3", str(tmp_path / "prod.db"), ".dump"], capture_output=True, check=True, timeout=60
    ).stdout
    (tmp_path / "dump.sql").write_bytes(dump)
    mask_data_file(
        str(tmp_path / "dump.sql"), str(tmp_path / "masked.sql.gz"), key_file=_key(tmp_path)
    )
    import gzip

    masked = gzip.decompress((tmp_path / "masked.sql.gz").read_bytes())
    subprocess.run(["sqlite3", str(tmp_path / "staging.db")], input=masked, check=True, timeout=60)
    _check_loaded(sqlite3.connect(tmp_path / "staging.db"))


# -- PostgreSQL ---------------------------------------------------------------------------------


def _pg_bin(name: str) -> str | None:
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / name).exists():
            return str(d / name)
    return shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def postgres() -> Iterator[tuple[int, list[str]]]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (run as a non-root user)."""
    tools = {n: _pg_bin(n) for n in ("initdb", "pg_ctl", "psql", "pg_dump")}
    if not all(tools.values()):
        pytest.skip("PostgreSQL server binaries are not installed (Debian: postgresql)")
    prefix: list[str] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server")
        if runuser is None:
            pytest.skip("running as root without runuser")
        prefix = [runuser, "-u", "postgres", "--"]
    base = tempfile.mkdtemp(prefix="rg-pg-", dir="/tmp")
    os.chmod(base, 0o777)
    data = os.path.join(base, "data")
    port = _free_port()
    env = {**os.environ, "LC_ALL": "C", "PGTZ": "UTC"}
    try:
        r = subprocess.run(
            [*prefix, tools["initdb"], "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8"],
            capture_output=True,
            env=env,
            timeout=300,
        )
        if r.returncode != 0:
            pytest.skip(f"initdb failed: {r.stderr.decode(errors='replace').strip()[-200:]}")
        opts = f"-p {port} -c listen_addresses=127.0.0.1 -k {base} -c fsync=off"
        r = subprocess.run(
            [
                *prefix,
                tools["pg_ctl"],
                "-D",
                data,
                "-o",
                opts,
                "-l",
                os.path.join(base, "log"),
                "-w",
                "-t",
                "120",
                "start",
            ],
            capture_output=True,
            env=env,
            timeout=300,
        )
        if r.returncode != 0:
            pytest.skip(f"pg_ctl start failed: {r.stderr.decode(errors='replace').strip()[-200:]}")
        try:
            yield port, [tools["psql"] or "", tools["pg_dump"] or ""]
        finally:
            subprocess.run(
                [*prefix, tools["pg_ctl"], "-D", data, "-m", "immediate", "-w", "stop"],
                capture_output=True,
                env=env,
                timeout=120,
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_pg_dump_inserts_and_copy_masked_and_loaded(
    postgres: tuple[int, list[str]], tmp_path: Path
) -> None:
    port, (psql, pg_dump) = postgres
    conn = ["-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]

    def sql(db: str, *args: str, stdin: bytes | None = None) -> bytes:
        return subprocess.run(
            [psql, *conn, "-d", db, "-v", "ON_ERROR_STOP=1", "-q", "-At", *args],
            input=stdin,
            capture_output=True,
            check=True,
            timeout=120,
        ).stdout

    sql("postgres", "-c", "CREATE DATABASE prod")
    sql(
        "prod",
        "-c",
        "CREATE TABLE users (id int PRIMARY KEY, email text UNIQUE, password text, pin int,"
        " note text, prefs jsonb)",
    )
    for u in USERS:
        vals = ", ".join(
            "NULL"
            if v is None
            else str(v)
            if isinstance(v, int)
            else "'" + v.replace("'", "''") + "'"
            for v in u
        )
        sql("prod", "-c", f"INSERT INTO users VALUES ({vals})")
    for mode in (["--inserts"], ["--column-inserts"], []):  # [] = COPY blocks
        dump = subprocess.run(
            [pg_dump, *conn, "-d", "prod", "--no-owner", *mode],
            capture_output=True,
            check=True,
            timeout=120,
        ).stdout
        name = "copy" if not mode else mode[0].strip("-")
        (tmp_path / f"{name}.sql").write_bytes(dump)
        mask_data_file(
            str(tmp_path / f"{name}.sql"),
            str(tmp_path / f"{name}.masked.sql"),
            key_file=_key(tmp_path),
        )
        masked = (tmp_path / f"{name}.masked.sql").read_bytes()
        assert_no_secret(masked.decode())
        sql("postgres", "-c", f"CREATE DATABASE staging_{name.replace('-', '_')}")
        sql(f"staging_{name.replace('-', '_')}", stdin=masked)
        out = sql(
            f"staging_{name.replace('-', '_')}",
            "-c",
            "SELECT email || '|' || password FROM users ORDER BY id",
        ).decode()
        email, password = traffic_pseudonyms(USERS[0][1], USERS[0][2])
        assert out.splitlines()[0] == f"{email}|{password}", (name, out)
        db = f"staging_{name.replace('-', '_')}"
        assert sql(db, "-c", "SELECT count(*), count(pin) FROM users").strip() == b"3|2"
        assert b"card 4000 " in sql(db, "-c", "SELECT note FROM users WHERE id = 1")
