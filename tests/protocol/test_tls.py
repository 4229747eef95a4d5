"""Passive TLS decryption: real TLS conversations (Python ssl in memory, keys written by the
client's ``keylog_filename``) fed as TCP segments to the traffic assembler."""

from __future__ import annotations

import itertools
import ssl
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replaygate.model import Exchange
from replaygate.protocol.assembler import AssemblerConfig, TrafficAssembler
from replaygate.protocol.keylog import KeyLog, load_keylog
from replaygate.protocol.segment import TcpSegment
from replaygate.protocol.tcp import DATA, EOF
from replaygate.protocol.tls import (
    TLSConfig,
    TLSConnection,
    TLSStats,
    looks_like_tls,
    version_name,
)

from . import h2frames
from .tlsconv import converse, segments

V10, V11 = ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1
V12, V13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3
REQ = b"GET /items?id=7 HTTP/1.1\r\nHost: shop.test\r\n\r\n"
RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
POST = b"POST /upload HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 11\r\n\r\nhello world"
MID = b"HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n" + b"y" * 20000
BIG = b"HTTP/1.1 200 OK\r\nContent-Length: 300000\r\n\r\n" + bytes(range(256)) * 1171 + b"x" * 224


def run(
    segs: list[TcpSegment], keys: KeyLog, **tls: float
) -> tuple[list[Exchange], TrafficAssembler]:
    asm = TrafficAssembler(AssemblerConfig(tls=TLSConfig(keys, **tls)))  # type: ignore[arg-type]
    out = asm.feed_batch(segs)
    out += asm.flush()
    return out, asm


def tls_stats(asm: TrafficAssembler) -> dict[str, int]:
    return {k: v for k, v in asm.stats.tls.as_dict().items() if v}


@pytest.mark.parametrize(
    ("version", "ciphers", "etm", "suite"),
    [
        (V13, None, True, "TLS_AES_256_GCM_SHA384"),
        (V12, "ECDHE-RSA-AES128-GCM-SHA256", True, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
        (V12, "ECDHE-RSA-AES256-GCM-SHA384", True, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
        (
            V12,
            "ECDHE-RSA-CHACHA20-POLY1305",
            True,
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        ),
        (V12, "ECDHE-RSA-AES128-SHA", True, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
        (V12, "ECDHE-RSA-AES128-SHA", False, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
        (V12, "ECDHE-RSA-AES128-SHA256", True, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"),
        (V12, "ECDHE-RSA-AES256-SHA384", False, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"),
        (V12, "AES256-GCM-SHA384", True, "TLS_RSA_WITH_AES_256_GCM_SHA384"),
        (V12, "AES128-SHA", True, "TLS_RSA_WITH_AES_128_CBC_SHA"),
        # TLS 1.0 (implicit IV chained across records, OpenSSL's 1/n-1 split) and 1.1
        (V10, "ECDHE-RSA-AES256-SHA:@SECLEVEL=0", True, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"),
        (V11, "AES128-SHA:@SECLEVEL=0", False, "TLS_RSA_WITH_AES_128_CBC_SHA"),
    ],
)
def test_each_suite_keep_alive_post_and_large_body(
    tmp_path: Path, version: ssl.TLSVersion, ciphers: str | None, etm: bool, suite: str
) -> None:
    kl = str(tmp_path / "keys.log")
    conv, _ = converse([(REQ, RESP), (POST, RESP), (REQ, BIG)], kl, version=version,
                       ciphers=ciphers, etm=etm)  # fmt: skip
    out, asm = run(segments(conv.flights), load_keylog(kl))
    assert [(e.request.method, e.request.target, e.response and e.response.status)
            for e in out] == [("GET", "/items?id=7", 200), ("POST", "/upload", 200),
                              ("GET", "/items?id=7", 200)]  # fmt: skip
    assert all(e.complete for e in out)
    assert out[1].request.body() == b"hello world"
    assert out[2].response is not None and out[2].response.raw == BIG
    assert out[0].meta == {
        "scheme": "https",
        "tls.sni": "shop.test",
        "tls.version": version.name.replace("TLSv1", "TLSv1.0").replace("TLSv1.0_", "TLSv1."),
        "tls.cipher": suite,
    }
    assert tls_stats(asm)["decrypted"] == 1
    assert not {k for k in tls_stats(asm) if k in ("no_key", "decrypt_error", "bad_record")}


def test_unsupported_suite_is_counted(tmp_path: Path) -> None:
    kl = str(tmp_path / "keys.log")
    conv, _ = converse([(REQ, RESP)], kl, version=V12, ciphers="CAMELLIA256-SHA")
    out, asm = run(segments(conv.flights), load_keylog(kl))
    assert out == []
    assert tls_stats(asm)["unsupported_suite"] == 1
    assert tls_stats(asm)["undecrypted_bytes"] > 0


@pytest.mark.parametrize("version", [V12, V13])
def test_no_key_is_counted_never_silent(tmp_path: Path, version: ssl.TLSVersion) -> None:
    kl = str(tmp_path / "keys.log")
    conv, _ = converse([(REQ, RESP)], kl, version=version)
    out, asm = run(segments(conv.flights), KeyLog())
    assert out == []
    s = tls_stats(asm)
    assert s["no_key"] == 1 and s["undecrypted_bytes"] > 0


def test_wrong_key_is_a_decrypt_error(tmp_path: Path) -> None:
    kl = tmp_path / "keys.log"
    conv, _ = converse([(REQ, RESP)], str(kl), version=V12)
    line = next(x for x in kl.read_text().splitlines() if x.startswith("CLIENT_RANDOM"))
    label, cr, secret = line.split()
    keys = KeyLog()
    keys.add_line(f"{label} {cr} {'00' * (len(secret) // 2)}")
    out, asm = run(segments(conv.flights), keys)
    assert out == [] and tls_stats(asm)["decrypt_error"] == 1


def test_h2_alpn_goes_to_the_http2_parser(tmp_path: Path) -> None:
    # #17: decrypted h2 is parsed (it used to be counted as tls.http2 and dropped)
    kl = str(tmp_path / "keys.log")
    client, server = h2frames.simple([(h2frames.get("/x"), b"")], [([(":status", "200")], b"hi")])
    conv, _ = converse([(client, server)], kl, alpn=["h2"])
    out, asm = run(segments(conv.flights), load_keylog(kl))
    (ex,) = out
    assert ex.request.raw == b"GET /x HTTP/2\r\nhost: a.test\r\n\r\n"
    assert ex.response is not None and ex.response.raw == b"HTTP/2 200\r\n\r\nhi"
    assert ex.meta["tls.alpn"] == "h2" and ex.meta["h2.stream"] == "1" and ex.complete
    s = tls_stats(asm)
    assert "http2" not in s and "http2_bytes" not in s and s["decrypted"] == 1
    assert asm.stats.http2_flows == 1


def test_alpn_http11_is_recorded(tmp_path: Path) -> None:
    kl = str(tmp_path / "keys.log")
    conv, _ = converse([(REQ, RESP)], kl, version=V12, alpn=["http/1.1"])
    out, _ = run(segments(conv.flights), load_keylog(kl))
    assert out[0].meta["tls.alpn"] == "http/1.1"


def test_joined_after_the_handshake_is_counted(tmp_path: Path) -> None:
    kl = str(tmp_path / "keys.log")
    conv, _ = converse([(REQ, RESP), (REQ, RESP)], kl, version=V12)
    late = conv.flights[4:]  # after ClientHello, server flight, client Finished, server CCS
    out, asm = run(segments(late, syn=False), load_keylog(kl))
    assert out == []
    assert tls_stats(asm)["cut_before_handshake"] == 1


def test_handshake_never_finished_is_counted(tmp_path: Path) -> None:
    kl = str(tmp_path / "keys.log")
    conv, _ = converse([], kl, version=V13)
    out, asm = run(segments(conv.flights[:1]), load_keylog(kl))
    assert out == [] and tls_stats(asm)["handshake_incomplete"] == 1


def test_a_gap_in_the_tls_stream_is_counted(tmp_path: Path) -> None:
    kl = str(tmp_path / "keys.log")
    conv, _ = converse([(REQ, RESP), (REQ, BIG)], kl, version=V12)
    segs = segments(conv.flights)
    big = max(range(len(segs)), key=lambda i: len(segs[i].payload) if i < len(segs) - 5 else 0)
    del segs[big + 3]  # a segment lost by the capture, in the middle of the big response
    out, asm = run(segs, load_keylog(kl))
    assert tls_stats(asm)["gap"] == 1
    assert out[0].complete and not out[1].complete


@pytest.mark.parametrize("version", [V12, V13])
def test_resumption_decrypts(tmp_path: Path, version: ssl.TLSVersion) -> None:
    kl = str(tmp_path / "keys.log")
    first, ctxs = converse([(REQ, RESP)], kl, version=version)
    second, _ = converse([(REQ, RESP)], kl, session=first.session, contexts=ctxs)
    assert second.session_reused
    segs = segments(first.flights) + segments(second.flights, client=("10.0.0.1", 40001),
                                              ts0=1_800_000_000_000_000_000)  # fmt: skip
    out, asm = run(segs, load_keylog(kl))
    assert [e.response and e.response.status for e in out] == [200, 200]
    assert out[1].meta.get("tls.resumed") == "1"
    assert tls_stats(asm)["resumed"] == 1


def test_tls12_resumption_without_its_own_line_uses_the_earlier_session(tmp_path: Path) -> None:
    kl = tmp_path / "keys.log"
    first, ctxs = converse([(REQ, RESP)], str(kl), version=V12)
    second, _ = converse([(REQ, RESP)], str(kl), session=first.session, contexts=ctxs)
    assert second.session_reused
    lines = [x for x in kl.read_text().splitlines() if x.startswith("CLIENT_RANDOM")]
    assert len(lines) == 2
    keys = KeyLog()
    keys.add_line(lines[0])  # only the first session's master secret
    seg2 = segments(second.flights, client=("10.0.0.1", 40001), ts0=1_800_000_000_000_000_000)
    out, asm = run(segments(first.flights) + seg2, keys)
    assert [e.response and e.response.status for e in out] == [200, 200]
    out, asm = run(seg2, keys)  # the session it resumes is not in the capture
    assert out == [] and tls_stats(asm)["resumed_without_secret"] == 1


@pytest.mark.parametrize("fin", [False, True])
def test_records_wait_for_a_key_that_arrives_later(tmp_path: Path, fin: bool) -> None:
    """Live capture: the key log line is written after the packets were seen, even after
    the connection closed (a short connection is over before the capture reads the file)."""
    kl = str(tmp_path / "keys.log")
    conv, _ = converse([(REQ, RESP)], kl, version=V13)
    keys = KeyLog()
    asm = TrafficAssembler(AssemblerConfig(tls=TLSConfig(keys)))
    segs = segments(conv.flights, fin=fin)
    assert asm.feed_batch(segs) == []
    assert asm.stats.tls.no_key == 0  # waiting, not given up
    keys.feed(Path(kl).read_bytes())
    out = asm.retry_tls(segs[-1].ts_ns)
    if not fin:
        out += asm.flush()
    assert [e.response and e.response.status for e in out] == [200]
    assert out[0].complete and asm.stats.tls.no_key == 0


def test_records_waiting_too_long_or_too_much_are_given_up(tmp_path: Path) -> None:
    kl = str(tmp_path / "keys.log")
    conv, _ = converse([(REQ, RESP)], kl, version=V13)
    segs = segments(conv.flights, fin=False)
    asm = TrafficAssembler(AssemblerConfig(tls=TLSConfig(KeyLog(), key_wait_s=1.0)))
    asm.feed_batch(segs)
    asm.retry_tls(segs[-1].ts_ns + 2_000_000_000)
    assert asm.stats.tls.no_key == 1
    _, asm = run(segs, KeyLog(), max_held_bytes=100)
    assert asm.stats.tls.key_wait_overflow == 1


def test_without_a_key_log_tls_is_only_counted(tmp_path: Path) -> None:
    conv, _ = converse([(REQ, RESP)], str(tmp_path / "k.log"), version=V12)
    asm = TrafficAssembler()
    assert asm.feed_batch(segments(conv.flights)) + asm.flush() == []
    assert asm.stats.tls_flows == 1 and asm.stats.non_http_flows == 1
    assert asm.stats.as_dict()["tls_sessions"] == 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.integers(min_value=1, max_value=3000), min_size=1, max_size=8).filter(
        lambda cuts: sum(cuts) / len(cuts) > 20
    )
)
def test_segmentation_does_not_matter(tmp_path_factory: pytest.TempPathFactory,
                                      cuts: list[int]) -> None:  # fmt: skip
    conv = _fixed_conversation(tmp_path_factory)
    keys = load_keylog(_KEYLOG[0])
    it = itertools.cycle(cuts)
    flights: list[tuple[bool, bytes]] = []
    for from_client, data in conv:
        pos = 0
        while pos < len(data):
            n = next(it)
            flights.append((from_client, data[pos : pos + n]))
            pos += n
    out, _ = run(segments(flights), keys)
    assert [(e.request.raw, e.response and e.response.raw) for e in out] == [
        (REQ, RESP),
        (POST, MID),
    ]


_KEYLOG: list[str] = []
_CONV: list[list[tuple[bool, bytes]]] = []


def _fixed_conversation(factory: pytest.TempPathFactory) -> list[tuple[bool, bytes]]:
    if not _CONV:
        kl = str(factory.mktemp("tls") / "keys.log")
        conv, _ = converse([(REQ, RESP), (POST, MID)], kl, version=V12,
                           ciphers="ECDHE-RSA-AES128-SHA")  # fmt: skip
        _KEYLOG.append(kl)
        _CONV.append(conv.flights)
    return _CONV[0]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=300)), max_size=8))
def test_arbitrary_bytes_never_raise(chunks: list[tuple[bool, bytes]]) -> None:
    keys = KeyLog()
    stats = TLSStats()
    conn = TLSConnection(TLSConfig(keys), stats)
    hello = b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00"
    conn.feed(True, [(DATA, hello)], 1)
    for i, (from_client, data) in enumerate(chunks):
        conn.feed(from_client, [(DATA, data)], i)
    conn.feed(True, [(EOF, 0)], 99)
    conn.close()
    assert stats.sessions == 1


def test_helpers() -> None:
    assert looks_like_tls(b"\x16\x03\x01\x02\x00")
    assert not looks_like_tls(b"GET / HTTP/1.1\r\n")
    assert not looks_like_tls(b"\x80\x2e\x01\x00\x02", from_client=False)
    assert version_name(0x0303) == "TLSv1.2"
    assert version_name(0x7F14) == "TLSv1.3-draft20"
    assert version_name(0x0300) == "SSLv3"


def test_pcapng_decryption_secrets_block_is_used_without_a_flag(tmp_path: Path) -> None:
    from replaygate.formats import ReadOptions
    from replaygate.formats.pcap import read
    from replaygate.pipeline import Counters

    from .tlsconv import pcap_bytes

    kl = tmp_path / "keys.log"
    conv, _ = converse([(REQ, RESP)], str(kl), version=V13)
    segs = segments(conv.flights)
    with_dsb = tmp_path / "dsb.pcapng"
    with_dsb.write_bytes(pcap_bytes(segs, kl.read_bytes()))
    got = list(read(str(with_dsb), ReadOptions()))
    assert [(e.request.target, e.response and e.response.status) for e in got] == [
        ("/items?id=7", 200)
    ]
    plain = tmp_path / "plain.pcap"
    plain.write_bytes(pcap_bytes(segs))
    c = Counters()
    assert list(read(str(plain), ReadOptions(counters=c))) == []  # no key: counted only
    assert c.notes["pcap.tls_flows"] == 1 and not c.dropped
    c = Counters()
    got = list(read(str(plain), ReadOptions(counters=c, extra={"tls_keylog": str(kl)})))
    assert len(got) == 1 and c.notes["pcap.tls_decrypted"] == 1


def test_joined_without_syn_the_hellos_say_who_is_the_client(tmp_path: Path) -> None:
    """No SYN and a client port below the server's: the ClientHello decides."""
    kl = str(tmp_path / "keys.log")
    conv, _ = converse([(REQ, RESP)], kl, version=V12)
    segs = segments(conv.flights, client=("10.0.0.1", 80), server=("10.0.0.2", 50443), syn=False)
    out, _ = run(segs, load_keylog(kl))
    assert [(e.request.target, e.conn and e.conn.sport) for e in out] == [("/items?id=7", 80)]
