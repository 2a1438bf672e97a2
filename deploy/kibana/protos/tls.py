"""[Packetbeat] TLS dashboard: versions, ciphers, server names, failed
handshakes (alerts), client fingerprints and handshake time."""


def dashboard(k):
    q = "type:tls"
    objs = [
        k.share(k.P + "tls-versions", "TLS versions", "tls.version", q),
        k.top_table(k.P + "tls-ciphers", "Negotiated cipher suites", "tls.cipher", q, label="Cipher suite"),
        k.top_table(k.P + "tls-server-names", "Top server names (SNI)", "tls.client.server_name", q,
                    label="Server name"),
        k.over_time_by(k.P + "tls-established-over-time", "Handshakes over time (established or not)",
                       "tls.established", q),
        k.top_table(k.P + "tls-alerts", "Alerts of failed handshakes", "tls.detailed.alert_types",
                    q + " and tls.established:false", latency_col=False, label="Alert"),
        k.top_table(k.P + "tls-ja3", "Top client fingerprints (JA3)", "tls.client.ja3", q, latency_col=False,
                    label="JA3"),
        k.latency(k.P + "tls-handshake-time", "Handshake time percentiles", q + " and tls.established:true",
                  "Time from the ClientHello to the end of the handshake (event.duration)"),
        k.search(k.P + "tls-search-failed", "Failed TLS handshakes", q + " and tls.established:false",
                 ["client.ip", "server.ip", "server.port", "tls.client.server_name", "tls.version",
                  "tls.detailed.alert_types"], "TLS handshakes that did not complete"),
        k.search(k.P + "tls-search-certificates", "Server certificates", q,
                 ["tls.client.server_name", "tls.server.subject", "tls.server.issuer", "tls.server.not_after",
                  "tls.server.hash.sha1"], "Certificates servers sent (TLS 1.2 and earlier: 1.3 encrypts them)"),
    ]
    dash = k.dashboard(k.P + "tls", "[Packetbeat] TLS",
                       "TLS versions, cipher suites, server names, failed handshakes and fingerprints",
                       [(objs[0], 16, 14), (objs[1], 32, 14), (objs[2], 24, 15), (objs[3], 24, 15),
                        (objs[4], 24, 12), (objs[5], 24, 12), (objs[6], 48, 14), (objs[7], 48, 14),
                        (objs[8], 48, 14)], query=q)
    return objs, dash
