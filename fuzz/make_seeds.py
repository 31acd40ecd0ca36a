#!/usr/bin/env python3
"""Seed corpora for the smtpaudit fuzz targets, made from real captures.

Usage: fuzz/make_seeds.py [CAPTURE_OR_DIR ...]
Default inputs: fixtures/ and $SMTPAUDIT_CORPUS or ../shared/corpus beside the repository when present.
Writes fuzz/corpus/<target>/<sha1> (gitignored). Standard library only.

- capture_reader, pipeline: the capture files as they are (plus a gzip copy of small ones).
- decode: single frames, prefixed with the link-type selector byte the target expects.
- smtp_session, flow_analysis, tls_session: each TCP connection reassembled per direction
  and written as the script the targets read (see fuzz/src/lib.rs), one op per segment in
  capture order, so real segmentation and interleaving are kept.

The reassembly here is deliberately simple (in-order by sequence number, retransmissions
trimmed, holes written as gap ops): seeds only need to be close to real traffic.
"""

import gzip
import hashlib
import os
import struct
import sys
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
OUT = FUZZ / "corpus"

# Selector byte of the decode target (fuzz_targets/decode.rs): sel % 10.
DECODE_SEL = {0: 0, 1: 1, 101: 2, 108: 3, 113: 4, 276: 5, 228: 6, 229: 7, 12: 8, 14: 8}
# Server ports of the flow_analysis header (fuzz_targets/flow_analysis.rs).
FA_PORTS = [25, 465, 587, 2525, 443, 10025, 80]
MAX_SEED = 1 << 20
FRAMES_PER_CAPTURE = 12


def write_seed(target, data):
    if not data or len(data) > MAX_SEED:
        return
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def frames(raw):
    """Yields (linktype, frame bytes) from pcap or pcapng bytes; stops quietly at damage."""
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    magic = raw[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        if len(raw) < 24:
            return
        link = struct.unpack(e + "I", raw[20:24])[0] & 0x0FFFFFFF
        off = 24
        while off + 16 <= len(raw):
            incl = struct.unpack(e + "I", raw[off + 8 : off + 12])[0]
            body = raw[off + 16 : off + 16 + incl]
            if len(body) < incl:
                return
            yield link, body
            off += 16 + incl
    elif magic == b"\x0a\x0d\x0d\x0a":
        off, e, links = 0, "<", []
        while off + 12 <= len(raw):
            btype = raw[off : off + 4]
            if btype == b"\x0a\x0d\x0d\x0a":
                e = "<" if raw[off + 8 : off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
                links = []
            (blen,) = struct.unpack(e + "I", raw[off + 4 : off + 8])
            if blen < 12 or off + blen > len(raw):
                return
            (bt,) = struct.unpack(e + "I", btype)
            body = raw[off + 8 : off + blen - 4]
            if bt == 1 and len(body) >= 2:
                links.append(struct.unpack(e + "H", body[:2])[0])
            elif bt == 6 and len(body) >= 20:
                ifc, _, _, incl, _ = struct.unpack(e + "IIIII", body[:20])
                if ifc < len(links):
                    yield links[ifc], body[20 : 20 + incl]
            elif bt == 3 and len(body) >= 4 and links:
                (olen,) = struct.unpack(e + "I", body[:4])
                yield links[0], body[4 : 4 + olen]
            off += blen


def ip_of(link, f):
    """(ethertype-ish version, ip bytes) or None."""
    if link == 1:
        off, et = 12, None
        while off + 2 <= len(f):
            et = struct.unpack(">H", f[off : off + 2])[0]
            if et in (0x8100, 0x88A8):
                off += 4
                continue
            break
        return f[off + 2 :] if et in (0x0800, 0x86DD) else None
    if link in (0, 108):
        return f[4:]
    if link in (101, 12, 14, 228, 229):
        return f
    if link == 113:
        return f[16:]
    if link == 276:
        return f[20:]
    return None


def tcp_of(ip):
    """(src, dst, sport, dport, seq, flags, payload) or None."""
    if not ip:
        return None
    v = ip[0] >> 4
    if v == 4 and len(ip) >= 20:
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        if ip[9] != 6 or struct.unpack(">H", ip[6:8])[0] & 0x3FFF:
            return None
        src, dst, seg = ip[12:16], ip[16:20], ip[ihl : max(total, ihl)]
    elif v == 6 and len(ip) >= 40:
        nxt, plen, off = ip[6], struct.unpack(">H", ip[4:6])[0], 40
        end = 40 + plen
        while nxt in (0, 43, 60) and off + 8 <= len(ip):
            nxt, off = ip[off], off + 8 + ip[off + 1] * 8
        if nxt != 6:
            return None
        src, dst, seg = ip[8:24], ip[24:40], ip[off:end]
    else:
        return None
    if len(seg) < 20:
        return None
    sport, dport, seq = struct.unpack(">HHI", seg[:8])
    doff = (seg[12] >> 4) * 4
    return src, dst, sport, dport, seq, seg[13], seg[doff:]


class Dir:
    def __init__(self):
        self.next = None
        self.held = {}


def connections(raw):
    """Per TCP connection: endpoints, how roles were known, and its ops in capture order."""
    flows = {}
    for link, f in frames(raw):
        t = tcp_of(ip_of(link, f))
        if not t:
            continue
        src, dst, sport, dport, seq, flags, payload = t
        a, b = (src, sport), (dst, dport)
        key = (min(a, b), max(a, b))
        fl = flows.get(key)
        if fl is None:
            syn_only = flags & 0x12 == 0x02
            synack = flags & 0x12 == 0x12
            if syn_only:
                client = a
            elif synack:
                client = b
            else:
                client = a if sport > dport else b
            server = b if client == a else a
            fl = flows[key] = {"client": client, "server": server, "syn": syn_only or synack,
                               "synack": synack and not syn_only, "dirs": [Dir(), Dir()],
                               "ops": []}
        d = 0 if a == fl["client"] else 1
        st = fl["dirs"][d]
        if flags & 0x02:
            st.next = (seq + 1) & 0xFFFFFFFF
        elif st.next is None:
            st.next = seq
        if flags & 0x02:
            seq = (seq + 1) & 0xFFFFFFFF
        if payload:
            rel = (seq - st.next) & 0xFFFFFFFF
            if rel >= 1 << 31:  # starts before what was delivered: trim the retransmitted part
                back = (1 << 32) - rel
                payload, seq = payload[back:], (seq + back) & 0xFFFFFFFF
            if payload:
                st.held.setdefault(seq, payload)
            while st.next in st.held:
                p = st.held.pop(st.next)
                fl["ops"].append((d, "data", p))
                st.next = (st.next + len(p)) & 0xFFFFFFFF
        if flags & 0x05:
            flush(fl, d)
            fl["ops"].append((d, "end", bool(flags & 0x04)))
    for fl in flows.values():
        for d in (0, 1):
            flush(fl, d)
        yield fl


def flush(fl, d):
    """Writes held out-of-order data after explicit gaps."""
    st = fl["dirs"][d]
    while st.held:
        seq = min(st.held, key=lambda s: (s - st.next) & 0xFFFFFFFF)
        gap = (seq - st.next) & 0xFFFFFFFF
        if gap:
            fl["ops"].append((d, "gap", gap))
        p = st.held.pop(seq)
        fl["ops"].append((d, "data", p))
        st.next = (seq + len(p)) & 0xFFFFFFFF


def encode(ops):
    """The script format of fuzz/src/lib.rs."""
    out = bytearray()
    for d, kind, v in ops:
        if kind == "data":
            for i in range(0, len(v), 0xFFFF):
                c = v[i : i + 0xFFFF]
                out += bytes([2 | d]) + struct.pack(">H", len(c)) + c
        elif kind == "gap":
            shift = max(0, v.bit_length() - 16)
            out += bytes([4 | d | (min(shift, 31) << 3)]) + struct.pack(">H", (v >> shift) & 0xFFFF)
        else:
            out.append(6 | d | (8 if v else 0))
    return bytes(out)


def tls_start(stream):
    """Offset of the first TLS record header at a line start (STARTTLS) or at 0."""
    for i in range(len(stream) - 2):
        if (i == 0 or stream[i - 1] == 0x0A) and stream[i] == 0x16 and stream[i + 1] == 3:
            return i
        if i == 0 and stream[0] & 0x80 and len(stream) > 2 and stream[2] == 1:
            return 0  # SSLv2 ClientHello
    return None


def tls_ops(ops):
    """The ops of the TLS part of a connection, or None when neither side spoke TLS."""
    streams = [b"".join(v for d, k, v in ops if d == x and k == "data") for x in (0, 1)]
    starts = [tls_start(s) for s in streams]
    if starts == [None, None]:
        return None, False
    out, seen = [], [0, 0]
    for d, kind, v in ops:
        st = starts[d]
        if st is None:
            continue
        if kind == "data":
            lo = seen[d]
            seen[d] += len(v)
            if seen[d] <= st:
                continue
            out.append((d, kind, v[max(0, st - lo) :]))
        elif seen[d] >= st:
            out.append((d, kind, v))
    return out, any(s for s in starts if s)


def seeds_from(path):
    raw = path.read_bytes()
    write_seed("capture_reader", raw)
    write_seed("pipeline", raw)
    if raw[:2] != b"\x1f\x8b" and len(raw) < 64 * 1024:
        gz = gzip.compress(raw, mtime=0)
        write_seed("capture_reader", gz)
    n = 0
    for link, f in frames(raw):
        sel = DECODE_SEL.get(link)
        if sel is not None and n < FRAMES_PER_CAPTURE:
            write_seed("decode", bytes([sel]) + f)
            n += 1
    for fl in connections(raw):
        ops = fl["ops"]
        if not ops:
            continue
        script = encode(ops)
        write_seed("smtp_session", script)
        write_seed("flow_analysis", fa_header(fl) + script)
        tops, starttls = tls_ops(ops)
        if tops:
            write_seed("tls_session", bytes([1 if starttls else 0]) + encode(tops))


def fa_header(fl):
    """The two header bytes of flow_analysis: server port, roles, posture findings, FIN, one copy."""
    port = fl["server"][1]
    pi = FA_PORTS.index(port) if port in FA_PORTS else 7
    roles = 0 if fl["syn"] and not fl["synack"] else 1 if fl["synack"] else 2
    return bytes([pi | roles << 3 | 0x80, 0])


def main(argv):
    inputs = [Path(a) for a in argv[1:]]
    if not inputs:
        inputs = [FUZZ.parent / "fixtures"]
        corpus = Path(os.environ.get("SMTPAUDIT_CORPUS", str(FUZZ.parent.parent / "shared" / "corpus")))
        if corpus.is_dir():
            inputs.append(corpus)
        else:
            print(f"make_seeds: no public corpus at {corpus}; fixtures only", file=sys.stderr)
    files = []
    for p in inputs:
        if p.is_dir():
            files += sorted(x for x in p.rglob("*") if x.suffix in (".pcap", ".pcapng", ".gz"))
        elif p.is_file():
            files.append(p)
    for f in files:
        try:
            seeds_from(f)
        except Exception as e:  # a damaged capture still seeds the reader targets
            print(f"make_seeds: {f}: {e}", file=sys.stderr)
    for d in sorted(OUT.iterdir()) if OUT.is_dir() else []:
        print(f"{d.name}: {len(list(d.iterdir()))} seeds")


if __name__ == "__main__":
    main(sys.argv)
