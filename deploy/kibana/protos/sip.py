"""The [Packetbeat] SIP dashboard: methods, response codes, errors, user
agents and callers (one event per SIP message: no latency panel, a message's
event.duration is 0 as in Packetbeat 8)."""


def dashboard(k):
    q = "type:sip"
    req = q + " and sip.type:request"
    resp = q + " and sip.type:response"
    err = q + " and status:Error"
    objs = [
        k.top_table(k.P + "sip-methods", "Top SIP request methods", "sip.method", req, latency_col=False,
                    label="Method"),
        k.over_time_by(k.P + "sip-actions-over-time", "SIP messages over time by event.action", "event.action", q),
        k.top_table(k.P + "sip-codes", "SIP response codes", "sip.code", resp, latency_col=False,
                    label="Status code"),
        k.count_metric(k.P + "sip-errors-count", "SIP error responses", err),
        k.top_table(k.P + "sip-user-agents", "Top SIP user agents", "sip.user_agent.original", q,
                    latency_col=False, label="User-Agent"),
        k.top_table(k.P + "sip-callers", "Top callers (From URI of INVITEs)", "sip.from.uri.original",
                    req + " and sip.method:INVITE", latency_col=False, label="From"),
        k.search(k.P + "sip-search-errors", "SIP error responses", err,
                 ["sip.code", "sip.status", "sip.cseq.method", "sip.call_id", "source.ip", "destination.ip"],
                 "SIP responses with a status code of 400 or more"),
    ]
    return objs, k.dashboard(k.P + "sip", "[Packetbeat] SIP",
                             "SIP methods, response codes, errors, user agents and callers",
                             [(objs[0], 16, 14), (objs[1], 32, 14), (objs[2], 16, 14), (objs[3], 8, 14),
                              (objs[4], 24, 14), (objs[5], 24, 14), (objs[6], 24, 14)], query=q)
