"""A TLS handshake -> event dict, with Packetbeat 8's field names
(``packetbeat/protos/tls/tls.go: createEvent``) and ECS's ``tls.*``.

Root: ``type: tls``, ``status`` (``OK`` when established, else ``Error``),
``event.start`` = first packet of the handshake, ``event.end`` /
``event.duration`` = the packet that ended it (both sides finished, or the
first fatal alert), ``server.domain`` / ``destination.domain`` = SNI.

``tls``: ``version``, ``version_protocol``, ``cipher``, ``curve``, ``established``,
``resumed``, ``next_protocol`` (ALPN the server chose), ``client.server_name``,
``client.supported_ciphers``, ``client.ja3``, ``client.ja4``, ``server.ja3s``,
``server.ja4s``, and for each side that sent certificates: ``subject``,
``issuer``, ``not_before``, ``not_after``, ``hash.<algo>``, ``x509`` (with
``include_detailed_fields``), ``certificate_chain`` (PEM, with
``include_raw_certificates``). ``tls.detailed``: the hellos, the rest of the
chains, ``client_certificate_requested``, ``resumption_method``, ``alerts``,
``alert_types``, ``ocsp_response``, ``version`` (``TLS 1.3``), and beyond
Packetbeat ``hello_retry_request`` and ``new_session_ticket.lifetime_hint``.

Resumption: TLS 1.3 when the ServerHello carries pre_shared_key; before 1.3,
as Packetbeat, a handshake without key exchange whose ServerHello echoes the
offered session id or answers an offered ticket. ``resumption_method`` as
Packetbeat: ``ticket`` when a ticket was offered and the ServerHello carries
the session_ticket extension, else ``id``.
"""
from __future__ import annotations

from worker.ecs import transaction_event
from worker.plugin import TcpTuple
from worker.protos.tls import algos, certs, fingerprints
from worker.protos.tls import handshake as hs
from worker.protos.tls.config import TlsConfig
from worker.protos.tls.trans import TlsConnection


# What a hello renders to apart from its random and session id, computed once
# per client (or server) build: key Hello.shape (its bytes with the volatile
# extensions cut out), bounded: at _CACHE_MAX entries the oldest half goes.
_CACHE: dict = {}
_CACHE_MAX = 1024


def _shape(h: hs.Hello) -> tuple:
    """The cache key of a hello made without the parser (no ``shape``)."""
    return (h.is_client, h.version, tuple(h.ciphers), tuple(h.compression), h.cipher, h.selected_compression,
            h.ext_ok, h.hrr, tuple([(c, None if hs.volatile(c) else len(d) if c == hs.EXT_SESSION_TICKET else d)
                                    for c, d in h.extensions]))


def _derived(h: hs.Hello) -> tuple:
    """(fingerprint, fingerprint, supported ciphers or None, extension map,
    SNI name (client) / chosen ALPN protocol (server) or None, hello version
    text, compression key, compression value) of a hello."""
    key = h.shape
    if key is None:
        key = _shape(h)
    got = _CACHE.get(key)
    if got is not None:
        return got
    if h.compression:
        comp_key = "supported_compression_methods"
        comp = [algos.compression_name(c) for c in h.compression]
    else:
        comp_key = "selected_compression_method"
        comp = algos.compression_name(h.selected_compression)
    if h.is_client:
        names = hs.sni_names(h.ext(hs.EXT_SNI))
        got = (fingerprints.ja3(h), fingerprints.ja4(h),
               [algos.cipher_name(c) for c in h.ciphers if not algos.is_grease(c)], hs.extension_map(h),
               names[0] if names else None, "%d.%d" % h.version, comp_key, comp)
    else:
        alpn = hs.alpn_list(h.ext(hs.EXT_ALPN))
        got = (fingerprints.ja3s(h), fingerprints.ja4s(h), None, hs.extension_map(h),
               alpn[0].decode("utf-8", "replace") if alpn else None, "%d.%d" % h.version, comp_key, comp)
    if len(_CACHE) >= _CACHE_MAX:
        for old in list(_CACHE)[:_CACHE_MAX // 2]:
            del _CACHE[old]
    _CACHE[key] = got
    return got


def _copy(exts: dict) -> dict:
    """A fresh copy of a cached extension map (events may be changed by
    processors); its values are text, lists of text or flat dicts."""
    return {k: list(v) if type(v) is list else dict(v) if type(v) is dict else v for k, v in exts.items()}


def _hello_map(h: hs.Hello, d: tuple) -> dict:
    m: dict = {"version": d[5]}
    if h.session_id:
        m["session_id"] = h.session_id.hex()
    if h.random:
        m["random"] = h.random.hex()
    comp = d[7]
    m[d[6]] = list(comp) if type(comp) is list else comp
    exts = d[3]
    if exts is not None:
        m["extensions"] = _copy(exts)
    return m


def _negotiated_version(ch: hs.Hello | None, sh: hs.Hello | None) -> tuple | None:
    if sh is not None:
        data = sh.ext(hs.EXT_SUPPORTED_VERSIONS)
        if data is not None and len(data) >= 2:
            return data[0], data[1]
        return sh.version
    if ch is not None:
        return ch.version
    return None


def _side_certs(side_obj: dict, detailed: dict, prefix: str, ders: list[bytes], cfg: TlsConfig) -> None:
    leaf = certs.describe(ders[0])
    if leaf is not None:
        if "distinguished_name" in leaf["subject"]:
            side_obj["subject"] = leaf["subject"]["distinguished_name"]
        if "distinguished_name" in leaf["issuer"]:
            side_obj["issuer"] = leaf["issuer"]["distinguished_name"]
        side_obj["not_before"] = leaf["not_before"]
        side_obj["not_after"] = leaf["not_after"]
    if cfg.fingerprints:
        side_obj["hash"] = certs.fingerprints(ders[0], cfg.fingerprints)
    if cfg.send_certificates:
        if leaf is not None:
            detailed[prefix + "_certificate"] = leaf
        chain = []
        for der in ders[1:]:
            m = certs.describe(der)
            if m is not None:
                chain.append(m)
        if chain:
            detailed[prefix + "_certificate_chain"] = chain
    if cfg.include_raw_certificates:
        side_obj["certificate_chain"] = [certs.pem(d) for d in ders]


def to_event(conn: TlsConnection, cfg: TlsConfig, tcptuple: TcpTuple, notes: list[str]) -> dict:
    cdir = conn.client_direction()
    client, server = conn.sides[cdir], conn.sides[1 - cdir]
    tup = tcptuple if cdir == 0 else TcpTuple(tcptuple.dst_ip, tcptuple.dst_port, tcptuple.src_ip,
                                               tcptuple.src_port, tcptuple.conn_id)
    established = conn.established
    end = conn.end_ts if established else conn.fatal_ts
    ev = transaction_event("tls", tup, conn.start_ts, end, 0, 0, "OK" if established else "Error",
                           conn.notes + notes)
    ch, sh = client.hello, server.hello
    if ch is not None and not ch.is_client:      # hellos of the wrong kind for the side (hostile)
        ch = None
    if sh is not None and sh.is_client:
        sh = None
    tls: dict = {}
    tclient: dict = {}
    tserver: dict = {}
    detailed: dict = {}

    if ch is not None:
        d = _derived(ch)
        detailed["client_hello"] = _hello_map(ch, d)
        tclient["ja3"] = d[0]
        tclient["ja4"] = d[1]
        tclient["supported_ciphers"] = list(d[2])
        name = d[4]
        if name is not None:
            tclient["server_name"] = name
            ev["destination"]["domain"] = name
            ev["server"]["domain"] = name
    if sh is not None:
        d = _derived(sh)
        detailed["server_hello"] = _hello_map(sh, d)
        tls["cipher"] = algos.cipher_name(sh.cipher)
        tserver["ja3s"] = d[0]
        tserver["ja4s"] = d[1]
        if d[4] is not None:
            tls["next_protocol"] = d[4]
    if server.hrr is not None:
        detailed["hello_retry_request"] = True

    # (a handshake that failed after a HelloRetryRequest: the version the HRR chose)
    version = _negotiated_version(ch, sh if sh is not None else server.hrr)
    tls13 = version == (3, 4)

    # curve: TLS 1.3 key_share, or the ECDHE ServerKeyExchange
    group = None
    if sh is not None and tls13:
        group = hs.key_share_group(sh)
    elif server.ske_group is not None and sh is not None and "ECDH" in tls.get("cipher", ""):
        group = server.ske_group
    if group is not None:
        tls["curve"] = algos.group_name(group)

    if server.ocsp is not None:
        detailed["ocsp_response"] = server.ocsp
    if client.certs:
        _side_certs(tclient, detailed, "client", client.certs, cfg)
    if server.certs:
        _side_certs(tserver, detailed, "server", server.certs, cfg)
    detailed["client_certificate_requested"] = server.cert_requested
    if server.ticket_lifetime is not None:
        detailed["new_session_ticket"] = {"lifetime_hint": server.ticket_lifetime}

    resumed = False
    method = ""
    if ch is not None and sh is not None:
        # Packetbeat's method: "ticket" when a ticket was offered and the
        # ServerHello answers with the session_ticket extension, else "id"
        # (kept for field-by-field comparisons, also for TLS 1.3 PSK
        # resumptions, which Packetbeat reports as "id")
        id_match = bool(ch.session_id) and ch.session_id == sh.session_id
        ticket = bool(ch.ext(hs.EXT_SESSION_TICKET)) and sh.has_ext(hs.EXT_SESSION_TICKET)
        if tls13:
            # every TLS 1.3 ServerHello in compatibility mode echoes the session
            # id: only a pre_shared_key answer is a resumption (Packetbeat
            # reports every such handshake as resumed)
            resumed = sh.has_ext(hs.EXT_PRE_SHARED_KEY)
        else:
            resumed = not client.key_exchanged and not server.key_exchanged and (id_match or ticket)
        method = "ticket" if ticket else "id"
    if resumed:
        detailed["resumption_method"] = method

    alerts = []
    types = []
    for source, side in (("client", client), ("server", server)):
        for level, code in side.alerts:
            alerts.append({"severity": algos.severity_name(level), "code": code,
                           "type": algos.alert_name(code), "source": source})
            types.append(algos.alert_name(code))
    if alerts:
        detailed["alerts"] = alerts
        detailed["alert_types"] = types

    if version is not None:
        detailed["version"] = algos.version_text(*version)
        tls["version_protocol"], tls["version"] = algos.protocol_version(*version)

    tls["established"] = established
    tls["resumed"] = resumed
    if cfg.include_detailed_fields:
        cert = detailed.pop("client_certificate", None)
        if cert is not None:
            tclient["x509"] = cert
        cert = detailed.pop("server_certificate", None)
        if cert is not None:
            tserver["x509"] = cert
        tls["detailed"] = detailed
    if tclient:
        tls["client"] = tclient
    if tserver:
        tls["server"] = tserver
    ev["tls"] = tls
    return ev
