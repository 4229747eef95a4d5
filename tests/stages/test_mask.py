"""The mask stage on real HTTP bytes: every place a secret can sit, every action, framing,
compression, idempotence, determinism, configuration and the CLI-facing factory."""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from pathlib import Path

import brotli
import pytest
import zstandard

from replaygate.config import section
from replaygate.errors import ConfigError
from replaygate.model import Exchange, Flag, Response
from replaygate.pipeline import run_pipeline
from replaygate.stages._mask_fp import fp_is_pseudonym, luhn_valid
from replaygate.stages.mask import (
    KEY_ENV,
    MaskConfig,
    MaskStage,
    load_mask_key,
    mask_stage_from_options,
)
from replaygate.testing import MemorySink, make_exchange, make_request, make_response

KEY = b"test-key-0123456789"
EMAIL = "alice.smith@corp-mail.io"
CARD = "4111 1111 1111 1111"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJ1c2VyLTQyIiwiZW1haWwiOiJhbGljZUBjb3JwLmlvIiwiZXhwIjoxNzAwMDAwMDAwfQ."
    "c2lnbmF0dXJlLWJ5dGVzLWhlcmU"
)


def stage(**kw: object) -> MaskStage:
    return MaskStage(MaskConfig(**kw), KEY)  # type: ignore[arg-type]


def mask(ex: Exchange, **kw: object) -> Exchange:
    return stage(**kw).mask_exchange(ex)


def req_text(ex: Exchange) -> str:
    return ex.request.raw.decode("utf-8", "replace")


# -- headers, cookies, URL ----------------------------------------------------------------


def test_authorization_bearer_keeps_scheme_and_jwt_shape() -> None:
    out = mask(make_exchange(request_headers=[("Authorization", f"Bearer {JWT}")]))
    auth = out.request.header("authorization")
    assert auth is not None and auth.startswith("Bearer ")
    tok = auth.split(" ", 1)[1]
    _h, p, sig = tok.split(".")
    payload = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    assert payload["exp"] == 1700000000  # non-identifying claims kept
    assert payload["sub"] != "user-42" and payload["email"].endswith("@example.com")
    assert sig.startswith("RGMASKED")
    assert JWT not in req_text(out)
    assert Flag.MASKED in out.flags and Flag.MODIFIED in out.flags


def test_basic_credentials_stay_valid_basic() -> None:
    cred = base64.b64encode(b"bob:s3cret-pw").decode()
    out = mask(make_exchange(request_headers=[("Proxy-Authorization", f"Basic {cred}")]))
    v = out.request.header("proxy-authorization")
    assert v is not None and v.startswith("Basic ")
    user, _, pw = base64.b64decode(v[6:]).decode().partition(":")
    assert user and pw and pw != "s3cret-pw" and fp_is_pseudonym(pw)


def test_cookies_masked_one_by_one_names_and_attributes_kept() -> None:
    ex = make_exchange(
        request_headers=[("Cookie", 'sid=abc123def456; theme="dark"; empty=')],
        response_headers=[("Set-Cookie", "sid=zzz999yyy888; Path=/; HttpOnly; Secure")],
    )
    out = mask(ex)
    cookie = out.request.header("cookie") or ""
    assert cookie.startswith("sid=") and "abc123def456" not in cookie
    assert '; theme="' in cookie and cookie.endswith("; empty=")
    assert out.response is not None
    sc = out.response.header("set-cookie") or ""
    assert sc.endswith("; Path=/; HttpOnly; Secure") and "zzz999yyy888" not in sc


def test_same_value_same_pseudonym_across_request_and_response() -> None:
    """Deterministic: the cookie staging must see later is the one the response set."""
    ex = make_exchange(
        request_headers=[("Cookie", "sid=abc123def456")],
        response_headers=[("Set-Cookie", "sid=abc123def456; Path=/")],
    )
    out = mask(ex)
    assert out.response is not None
    req_v = (out.request.header("cookie") or "").split("=", 1)[1]
    resp_v = (out.response.header("set-cookie") or "").split("=", 1)[1].split(";")[0]
    assert req_v == resp_v


def test_secret_named_headers_and_keep_headers() -> None:
    ex = make_exchange(
        request_headers=[
            ("X-Api-Key", "key-1234567"),
            ("X-Internal-Service-Token", "tok-7654321"),
            ("X-Request-Id", "req-1"),
            ("User-Agent", f"curl mail {EMAIL}"),
        ]
    )
    out = mask(ex, keep_headers=["x-internal-service-token"])
    t = req_text(out)
    assert "key-1234567" not in t and "tok-7654321" in t and "X-Request-Id: req-1" in t
    assert EMAIL not in t and "@example.com" in t


def test_query_params_path_and_percent_encoding() -> None:
    target = (
        f"/users/{EMAIL}/cards/4111111111111111?access_token=SECRETTOKEN1&page=2"
        "&contact=carol%40corp.io&q=hello+world"
    )
    out = mask(make_exchange("GET", target))
    t = out.request.target
    assert "SECRETTOKEN1" not in t and "4111111111111111" not in t and "carol" not in t
    assert EMAIL not in t and "page=2" in t and "q=hello+world" in t
    assert t.startswith("/users/u") and "@example.com/cards/40000000" in t


def test_absolute_target_userinfo_masked() -> None:
    out = mask(make_exchange("GET", "http://admin:hunter22@example.test/x?password=abc12345"))
    t = out.request.target
    assert "hunter22" not in t and "abc12345" not in t and t.startswith("http://")
    assert "@example.test/x?password=" in t


def test_url_headers_location_and_referer() -> None:
    ex = make_exchange(
        request_headers=[("Referer", "https://shop.test/reset?token=RESETTOKEN99")],
        status=302,
        response_headers=[("Location", f"/welcome?email={EMAIL}")],
    )
    out = mask(ex)
    assert out.response is not None
    assert "RESETTOKEN99" not in req_text(out)
    assert EMAIL not in (out.response.header("location") or "")


# -- bodies -------------------------------------------------------------------------------


def _json_req(doc: object, **kw: object) -> Exchange:
    return make_exchange(
        "POST",
        "/api",
        request_body=json.dumps(doc).encode(),
        request_headers=[("Content-Type", "application/json")],
        **kw,  # type: ignore[arg-type]
    )


def test_json_fields_nested_arrays_numbers_and_innocent_names() -> None:
    doc = {
        "user": {"email": EMAIL, "password": "hunter2", "pin": 4821, "newPassword": "x1y2z3"},
        "cards": [{"number": CARD, "cvv": "123"}],
        "max_tokens": 256,
        "token_type": "Bearer",
        "count": 3,
        "nested": json.dumps({"refresh_token": "REFRESH123456", "note": f"mail {EMAIL}"}),
    }
    out = mask(_json_req(doc))
    body = json.loads(out.request.body())
    assert body["max_tokens"] == 256 and body["token_type"] == "Bearer" and body["count"] == 3
    assert body["user"]["email"].endswith("@example.com")
    assert body["user"]["password"] != "hunter2" and fp_is_pseudonym(body["user"]["password"])
    assert isinstance(body["user"]["pin"], int) and body["user"]["pin"] != 4821
    assert body["user"]["newPassword"] != "x1y2z3"
    num = body["cards"][0]["number"]
    assert num.startswith("4000 0000") and luhn_valid(num.replace(" ", ""))
    assert len(num) == len(CARD) and body["cards"][0]["cvv"] != "123"
    nested = json.loads(body["nested"])
    assert nested["refresh_token"] != "REFRESH123456" and EMAIL not in nested["note"]
    assert out.request.header("content-length") == str(len(out.request.body()))


def test_json_paths_wildcards_and_deep() -> None:
    doc = {
        "users": [{"name": "Ann Lee", "id": 1}, {"name": "Bo Chan", "id": 2}],
        "meta": {"deep": {"x": {"secretish": "keepme-no", "pass_code": "PC-778899"}}},
    }
    out = mask(_json_req(doc), json_paths=["$.users[*].name", "**.pass_code"])
    body = json.loads(out.request.body())
    assert [u["name"] for u in body["users"]] != ["Ann Lee", "Bo Chan"]
    assert [u["id"] for u in body["users"]] == [1, 2]
    assert body["meta"]["deep"]["x"]["pass_code"] != "PC-778899"
    assert body["meta"]["deep"]["x"]["secretish"] == "keepme-no"


def test_json_path_subtree_and_drop() -> None:
    doc = {"profile": {"address": {"street": "1 Main St", "zip": 12345}}, "secret": "zz-top-99"}
    out = mask(_json_req(doc), json_paths=["$.profile.address"], actions={"field:secret": "drop"})
    body = json.loads(out.request.body())
    assert body["profile"]["address"]["street"] != "1 Main St"
    assert body["profile"]["address"]["zip"] != 12345
    assert "secret" not in body


def test_json_escapes_and_invalid_json_fall_back_to_text() -> None:
    raw = b'{"note": "write to alice\\u0040corp.io"}'
    out = mask(
        make_exchange(
            "POST", "/", request_body=raw, request_headers=[("Content-Type", "application/json")]
        )
    )
    assert b"corp.io" not in out.request.body()
    bad = f'{{"password": "hunter2", broken {EMAIL}'.encode()
    out = mask(
        make_exchange(
            "POST", "/", request_body=bad, request_headers=[("Content-Type", "application/json")]
        )
    )
    assert b"hunter2" not in out.request.body() and EMAIL.encode() not in out.request.body()


def test_urlencoded_form() -> None:
    body = f"user=ann&password=p%40ss+word&email={EMAIL.replace('@', '%40')}&keep=1".encode()
    out = mask(
        make_exchange(
            "POST",
            "/login",
            request_body=body,
            request_headers=[("Content-Type", "application/x-www-form-urlencoded")],
        )
    )
    b = out.request.body().decode()
    assert b.startswith("user=ann&password=") and b.endswith("&keep=1")
    assert "p%40ss" not in b and "corp-mail" not in b


def test_form_fields_rule_and_drop_action() -> None:
    body = b"nick=annie&password=hunter2&x=1"
    ex = make_exchange(
        "POST",
        "/f",
        request_body=body,
        request_headers=[("Content-Type", "application/x-www-form-urlencoded")],
    )
    out = mask(ex, form_fields=["nick"], actions={"field": "drop"})
    assert out.request.body().startswith(b"nick=") and b"annie" not in out.request.body()
    assert b"password" not in out.request.body()


def test_multipart_fields_and_files() -> None:
    boundary = "----rgBoundary42"
    parts = [
        ('name="username"', b"ann"),
        ('name="password"', b"hunter2-multi"),
        ('name="bio"', f"reach me at {EMAIL}".encode()),
        (
            'name="avatar"; filename="a.png"\r\nContent-Type: image/png',
            b"\x89PNG\x00\x01" + EMAIL.encode(),
        ),
    ]
    body = (
        b"".join(
            f"--{boundary}\r\nContent-Disposition: form-data; {d}\r\n\r\n".encode() + c + b"\r\n"
            for d, c in parts
        )
        + f"--{boundary}--\r\n".encode()
    )
    ex = make_exchange(
        "POST",
        "/up",
        request_body=body,
        request_headers=[("Content-Type", f"multipart/form-data; boundary={boundary}")],
    )
    out = mask(ex)
    b = out.request.body()
    assert b"hunter2-multi" not in b and b'name="password"\r\n\r\n' in b
    assert b"reach me at u" in b  # text part: detector ran
    assert b"\x89PNG\x00\x01" + EMAIL.encode() in b  # binary file part untouched
    assert b.endswith(f"--{boundary}--\r\n".encode())


@pytest.mark.parametrize(
    ("enc", "compress", "decompress"),
    [
        ("gzip", lambda b: gzip.compress(b), gzip.decompress),
        ("deflate", zlib.compress, zlib.decompress),
        ("br", brotli.compress, brotli.decompress),
        (
            "zstd",
            lambda b: zstandard.ZstdCompressor().compress(b),
            lambda b: zstandard.ZstdDecompressor().decompressobj().decompress(b),
        ),
    ],
)
def test_compressed_bodies_decoded_masked_reencoded(enc, compress, decompress) -> None:  # type: ignore[no-untyped-def]
    plain = json.dumps({"email": EMAIL, "n": 1}).encode()
    ex = make_exchange(
        response_body=compress(plain),
        response_headers=[("Content-Encoding", enc), ("Content-Type", "application/json")],
    )
    out = mask(ex)
    assert out.response is not None
    assert out.response.header("content-encoding") == enc
    got = decompress(out.response.body())
    assert EMAIL.encode() not in got and b"@example.com" in got
    assert out.response.header("content-length") == str(len(out.response.body()))


def test_chunked_body_reframed_with_content_length() -> None:
    payload = f'{{"token": "CHUNKSECRET77", "mail": "{EMAIL}"}}'.encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)
    resp = make_response(
        200,
        chunked,
        headers=[("Transfer-Encoding", "chunked"), ("Content-Type", "application/json")],
    )
    ex = make_exchange()
    ex.response = resp
    out = mask(ex)
    assert out.response is not None
    assert out.response.header("transfer-encoding") is None
    assert out.response.header("content-length") == str(len(out.response.body()))
    assert b"CHUNKSECRET77" not in out.response.raw and EMAIL.encode() not in out.response.raw


def test_binary_bodies_skipped_and_counted() -> None:
    st = stage()
    ex = make_exchange(
        response_body=b"\x89PNG\r\n\x1a\n" + EMAIL.encode(),
        response_headers=[("Content-Type", "image/png")],
    )
    out = st.mask_exchange(ex)
    assert out is ex and st.stats.skipped_binary == 1


def test_text_body_detectors_and_field_pairs() -> None:
    text = (
        f"contact {EMAIL} card {CARD}\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzzzzzzzzz\n"
        "password: hunter2 key AKIAIOSFODNN7QWERTYU ghp_" + "A1b2" * 9 + "\n"
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n"
        "IBAN DE89 3704 0044 0532 0130 00 phone +44 20 7946 0958 slack xoxb-1234567890-abcdefghij\n"
        "stripe sk_live_abcdefghijklmnop1234"
    )
    ex = make_exchange(
        response_body=text.encode(), response_headers=[("Content-Type", "text/plain")]
    )
    st = stage()
    out = st.mask_exchange(ex)
    assert out.response is not None
    body = out.response.body().decode()
    for secret in (
        EMAIL,
        CARD,
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzzzzzzzzz",
        "hunter2",
        "AKIAIOSFODNN7QWERTYU",
        "A1b2A1b2A1b2",
        "MIIEowIBAAKCAQEA",
        "DE89 3704 0044 0532 0130 00",
        "7946 0958",
        "xoxb-1234567890-abcdefghij",
        "sk_live_abcdefghijklmnop1234",
    ):
        assert secret not in body, secret
    assert "-----BEGIN RSA PRIVATE KEY-----" in body and "AKIA" in body and "ghp_" in body
    assert set(st.stats.findings) >= {"email", "card", "aws_secret_key", "field", "aws_access_key"}


def test_ip_addresses_opt_in() -> None:
    ex = make_exchange(request_headers=[("X-Forwarded-For", "203.0.114.7, 2a00:1450:4001::200e")])
    assert mask(ex) is ex
    out = mask(ex, ip_addresses=True)
    xff = out.request.header("x-forwarded-for") or ""
    assert "203.0.114.7" not in xff and "2a00:1450" not in xff and "2001:db8:" in xff


# -- actions, determinism, idempotence ------------------------------------------------------


def test_redact_marker_keeps_equality() -> None:
    ex = _json_req(
        {
            "a": {"password": "same-pw-1"},
            "b": {"password": "same-pw-1"},
            "c": {"password": "other-pw"},
        }
    )
    body = json.loads(mask(ex, action="redact").request.body())
    a, b, c = body["a"]["password"], body["b"]["password"], body["c"]["password"]
    assert a == b != c and a.startswith("[redacted:") and len(a) == len("[redacted:123456]")


def test_drop_header_cookie_and_query() -> None:
    ex = make_exchange(
        "GET",
        "/x?api_key=K123456&keep=1",
        request_headers=[
            ("Authorization", "Bearer abcdefgh123"),
            ("Cookie", "sid=s123456; lang=en"),
        ],
    )
    out = mask(
        ex,
        actions={"header:authorization": "drop", "field:api_key": "drop", "cookie:sid": "drop"},
    )
    assert out.request.header("authorization") is None
    assert out.request.target == "/x?keep=1"
    cookie = out.request.header("cookie") or ""
    assert "sid" not in cookie and cookie.startswith("lang=")


def test_deterministic_across_stages_and_keyed() -> None:
    ex = _json_req({"email": EMAIL, "password": "hunter2"})
    a = MaskStage(MaskConfig(), KEY).mask_exchange(ex).request.raw
    b = MaskStage(MaskConfig(), KEY).mask_exchange(ex).request.raw
    c = MaskStage(MaskConfig(), b"another key").mask_exchange(ex).request.raw
    assert a == b and a != c


def test_masking_twice_is_a_noop() -> None:
    ex = make_exchange(
        "POST",
        f"/u/{EMAIL}?token=QQQWWWEEE123",
        request_headers=[
            ("Authorization", f"Bearer {JWT}"),
            ("Cookie", "sid=abc123def456"),
            ("Content-Type", "application/json"),
        ],
        request_body=json.dumps(
            {"password": "hunter2", "card": CARD, "pin": 1234, "n": json.dumps({"secret": "s3"})}
        ).encode(),
        response_headers=[("Content-Encoding", "gzip"), ("Content-Type", "text/plain")],
        response_body=gzip.compress(f"hi {EMAIL} +44 20 7946 0958".encode()),
    )
    once = mask(ex)
    st = stage()
    twice = st.mask_exchange(once)
    assert twice is once
    assert sum(st.stats.findings.values()) == 0 and sum(st.stats.already_masked.values()) > 5
    # also with another key: pseudonyms are recognisable without the key
    assert MaskStage(MaskConfig(), b"k2").mask_exchange(once) is once


def test_unchanged_exchange_is_returned_as_is() -> None:
    ex = make_exchange(
        "GET", "/health", response_body=b"ok", response_headers=[("Content-Type", "text/plain")]
    )
    out = mask(ex)
    assert out is ex and Flag.MASKED not in out.flags


def test_replayed_interim_meta_and_error_masked() -> None:
    ex = make_exchange(
        replayed_status=200,
        replayed_body=f"hello {EMAIL}".encode(),
        replayed_headers=[("Content-Type", "text/plain"), ("Set-Cookie", "sid=staging123456")],
    )
    ex.interim.append(Response(b"HTTP/1.1 100 Continue\r\nX-Auth-Token: interimtoken1\r\n\r\n"))
    ex.meta["note"] = f"from {EMAIL}"
    ex.replay_error = f"connect failed for {EMAIL}"
    out = mask(ex)
    assert out.replayed is not None and EMAIL.encode() not in out.replayed.raw
    assert b"interimtoken1" not in out.interim[0].raw
    assert EMAIL not in out.meta["note"] and out.replay_error and EMAIL not in out.replay_error


def test_responses_can_be_left_alone() -> None:
    ex = make_exchange(
        response_body=EMAIL.encode(), response_headers=[("Content-Type", "text/plain")]
    )
    out = mask(ex, responses=False)
    assert out is ex


def test_custom_patterns_and_detector_selection() -> None:
    ex = make_exchange("GET", "/orders/ORD-12345678?mail=" + EMAIL)
    out = mask(ex, patterns=[r"ORD-(\d{8})"], detectors=["card"])
    t = out.request.target
    assert "12345678" not in t and t.startswith("/orders/ORD-") and EMAIL in t


def test_stats_are_counts_never_values() -> None:
    st = stage()
    st.mask_exchange(_json_req({"password": "hunter2", "email": EMAIL}))
    d = st.stats.as_dict()
    assert d["findings"]["field"] == 1 and d["findings"]["email"] == 1 and d["changed"] == 1
    assert "hunter2" not in repr(d) and EMAIL not in repr(d)


def test_pipeline_stage_protocol() -> None:
    sink = MemorySink()
    st = stage()
    run_pipeline([_json_req({"password": "hunter2"})], [st], sink)
    assert st.name == "mask" and b"hunter2" not in sink.exchanges[0].request.raw


# -- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"action": "obfuscate"}, r"\[mask\] action"),
        ({"actions": {"email": "burn"}}, r"actions\.email"),
        ({"detectors": ["email", "dna"]}, "unknown 'dna'"),
        ({"patterns": ["("]}, "not a valid regex"),
        ({"json_paths": ["$.a[["]}, "json_paths"),
        ({"headers": "Authorization"}, "list of strings"),
    ],
)
def test_config_errors_name_the_field(kw: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        MaskConfig(**kw)  # type: ignore[arg-type]


def test_section_rejects_unknown_keys() -> None:
    with pytest.raises(ConfigError, match=r"\[mask\] unknown field 'header'"):
        section(MaskConfig, {"header": ["x"]}, name="mask")


def test_factory_off_on_and_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    assert (
        mask_stage_from_options(enabled=False, config_path=None, key_file=None, config={}) is None
    )
    with pytest.raises(ConfigError, match="masking is off"):
        mask_stage_from_options(enabled=False, config_path=None, key_file="k", config=None)
    st = mask_stage_from_options(enabled=True, config_path=None, key_file=None, config=None)
    assert isinstance(st, MaskStage)
    assert "random per-run key" in capsys.readouterr().err
    # [mask] in replaygate.toml turns masking on; enabled=false turns it off
    st = mask_stage_from_options(
        enabled=False, config_path=None, key_file=None, config={"mask": {"action": "redact"}}
    )
    assert isinstance(st, MaskStage) and st.config.action == "redact"
    assert (
        mask_stage_from_options(
            enabled=False, config_path=None, key_file=None, config={"mask": {"enabled": False}}
        )
        is None
    )
    capsys.readouterr()
    cfg = tmp_path / "mask.toml"
    cfg.write_text('[mask]\nheaders = ["X-Tenant"]\nactions = { email = "redact" }\n')
    keyf = tmp_path / "key"
    keyf.write_text("file-key\n")
    st = mask_stage_from_options(
        enabled=False, config_path=str(cfg), key_file=str(keyf), config=None
    )
    assert isinstance(st, MaskStage)
    out = st.mask_exchange(
        make_exchange(request_headers=[("X-Tenant", "acme-corp-1"), ("From", EMAIL)])
    )
    assert "acme-corp-1" not in req_text(out) and "[redacted:" in (out.request.header("from") or "")
    assert capsys.readouterr().err == ""  # key given: no notice


def test_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "env-key")
    assert load_mask_key(None) == b"env-key"
    f = tmp_path / "k"
    f.write_bytes(b"  file-key \n")
    assert load_mask_key(str(f)) == b"file-key"
    f.write_bytes(b"\n")
    with pytest.raises(ConfigError, match="empty"):
        load_mask_key(str(f))
    with pytest.raises(ConfigError, match="--mask-key-file"):
        load_mask_key(str(tmp_path / "missing"))
    monkeypatch.delenv(KEY_ENV)
    assert load_mask_key(None, notice=False) != load_mask_key(None, notice=False)


def test_request_without_head_or_body_survives() -> None:
    ex = Exchange(id="x", request=make_request("GET", "/"))
    ex.request = type(ex.request)(b"garbage without head")
    assert mask(ex).request.raw == b"garbage without head"


def test_json_path_action_kind_and_secret_object_dropped_whole() -> None:
    doc = {
        "user": {"name": "Ann Lee"},
        "credentials": {"password": "pw-1"},
        "password": {"old": "a1", "new": "b2"},
    }
    out = mask(
        _json_req(doc),
        json_paths=["$.user.name"],
        actions={"json": "redact", "field:password": "drop"},
    )
    body = json.loads(out.request.body())
    assert body["user"]["name"].startswith("[redacted:")
    assert "password" not in body and body["credentials"] == {}


def test_stats_summary_line() -> None:
    st = stage()
    st.mask_exchange(_json_req({"password": "hunter2", "email": EMAIL}))
    line = st.stats.summary()
    assert line.startswith("mask: 2 values masked in 1 of 1 exchanges (email=1, field=1)")
    assert "hunter2" not in line


def test_replay_hook_masks_staging_responses_not_requests() -> None:
    st = stage()
    hook = st.replay_hook()
    ex = make_exchange(request_headers=[("Cookie", "sid=staging-value-1")])
    req = ex.request
    assert hook.before_send(ex, req) is req  # correlation's staging values reach staging
    ex.replayed = make_response(
        200, f"hi {EMAIL}".encode(), headers=[("Content-Type", "text/plain")]
    )
    ex.replay_error = None
    hook.after_response(ex)
    assert ex.replayed is not None and EMAIL.encode() not in ex.replayed.raw
    assert Flag.MASKED in ex.flags
    ex2 = make_exchange()
    ex2.replay_error = f"timeout talking about {EMAIL}"
    hook.after_response(ex2)
    assert ex2.replay_error and EMAIL not in ex2.replay_error


def test_body_claiming_gzip_but_plain_is_still_masked() -> None:
    ex = make_exchange(
        response_body=f"not gzip at all {EMAIL}".encode(),
        response_headers=[("Content-Encoding", "gzip"), ("Content-Type", "text/plain")],
    )
    out = mask(ex)
    assert out.response is not None and EMAIL.encode() not in out.response.raw


def test_untyped_bodies_are_sniffed() -> None:
    text = make_exchange(
        "POST", "/", request_body=f'{{"password": "hunter2", "m": "{EMAIL}"}}'.encode()
    )
    out = mask(text)
    assert b"hunter2" not in out.request.raw and EMAIL.encode() not in out.request.raw
    binary = make_exchange("POST", "/", request_body=b"\x00\x01\x02" + EMAIL.encode())
    assert mask(binary) is binary


def test_http09_response_and_folded_header() -> None:
    ex = make_exchange()
    ex.response = Response(f"hello {EMAIL}\n".encode(), head_len=0)
    ex.request = type(ex.request)(
        b"GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer\r\n  abcdefgh12345\r\n\r\n"
    )
    out = mask(ex)
    assert out.response is not None and EMAIL.encode() not in out.response.raw
    assert b"abcdefgh12345" not in out.request.raw


def test_large_body_masked() -> None:
    line = f'{{"email": "{EMAIL}", "n": 1}}\n'.encode()
    body = line * 20_000  # ~1 MB of NDJSON-ish text
    ex = make_exchange(response_body=body, response_headers=[("Content-Type", "text/plain")])
    out = mask(ex)
    assert out.response is not None and EMAIL.encode() not in out.response.raw
    assert out.response.raw.count(b"@example.com") == 20_000


def test_client_address_of_connection_masked_when_ips_opted_in() -> None:
    from replaygate.model import ConnectionId

    conn = ConnectionId("10.1.2.3", 51000, "10.9.9.9", 80)
    ex = make_exchange(conn=conn)
    assert mask(ex) is ex  # IPs are opt-in
    out = mask(ex, ip_addresses=True)
    assert out.conn is not None and out.conn.src != "10.1.2.3" and out.conn.dst == "10.9.9.9"
    assert out.conn.sport == 51000 and mask(out, ip_addresses=True) is out
    assert mask(ex, ip_addresses=True).conn == out.conn  # same client, same pseudonym


def test_absurdly_deep_json_is_masked_as_text() -> None:
    deep = (b'{"a":' * 5000) + f'"{EMAIL}"'.encode() + (b"}" * 5000)
    out = mask(_json_req_raw(deep))
    assert EMAIL.encode() not in out.request.raw and mask(out) is out
    payload = base64.urlsafe_b64encode(b'{"a":' * 3000 + b"1" + b"}" * 3000).rstrip(b"=").decode()
    tok = f"eyJhbGciOiJIUzI1NiJ9.{payload}.c2ln"
    out = mask(make_exchange(request_headers=[("Authorization", f"Bearer {tok}")]))
    assert tok not in req_text(out) and "RGMASKED" in req_text(out)


def _json_req_raw(body: bytes) -> Exchange:
    return make_exchange(
        "POST", "/api", request_body=body, request_headers=[("Content-Type", "application/json")]
    )


@pytest.mark.parametrize("action", ["pseudonymize", "redact", "drop"])
def test_values_seen_again_mask_and_count_as_the_first_time(action: str) -> None:
    """The stage remembers what a (detector, value) and a short text mask to: a repeated
    exchange gives the bytes and adds the counts a fresh stage gives for it."""
    ex = make_exchange(
        "GET",
        f"/u/{EMAIL}/orders?card=4111+1111+1111+1111&q=shoes",
        request_headers=[("X-Note", f"mail {EMAIL} or call +1 415 555 0100"), ("Cookie", "a=b")],
        request_body=json.dumps({"email": EMAIL, "card": CARD, "tags": [EMAIL, "x"]}).encode(),
        response_headers=[("Content-Type", "text/plain")],
        response_body=f"{EMAIL} {CARD} token=tok_8cb4a0d7d6225675".encode(),
    )
    warm = stage(action=action)
    first = warm.mask_exchange(ex)
    again = warm.mask_exchange(ex)
    fresh = stage(action=action)
    alone = fresh.mask_exchange(ex)
    assert bytes(again.request.raw) == bytes(first.request.raw) == bytes(alone.request.raw)
    assert again.response is not None and alone.response is not None
    assert bytes(again.response.raw) == bytes(alone.response.raw)
    doubled = {k: 2 * v for k, v in fresh.stats.findings.items()}
    assert dict(warm.stats.findings) == doubled and doubled
