"""[Packetbeat] MongoDB dashboard: operations by command and collection,
errors, latency (built with the helpers of deploy/kibana/build.py)."""


def dashboard(k):
    q = "type:mongodb"
    objs = [
        k.top_table(k.P + "mongodb-top-methods", "Top MongoDB commands", "method", q, label="Command"),
        k.top_table(k.P + "mongodb-top-resources", "Top MongoDB collections", "resource", q, label="db.collection"),
        k.over_time_by(k.P + "mongodb-methods-over-time", "MongoDB commands over time", "method", q),
        k.top_table(k.P + "mongodb-errors", "MongoDB errors", "mongodb.error", q + " and not status:OK",
                    latency_col=False, label="Error"),
        k.latency(k.P + "mongodb-latency", "MongoDB response time percentiles", q),
        k.search(k.P + "mongodb-search-errors", "MongoDB errors", q + " and not status:OK",
                 ["method", "resource", "mongodb.error", "client.ip", "server.ip"],
                 "MongoDB commands answered with an error"),
    ]
    return objs, k.dashboard(k.P + "mongodb", "[Packetbeat] MongoDB",
                             "Top MongoDB commands and collections, errors and latency",
                             [(objs[0], 24, 15), (objs[1], 24, 15), (objs[2], 48, 14), (objs[3], 24, 12),
                              (objs[4], 24, 12), (objs[5], 48, 14)], query=q)
