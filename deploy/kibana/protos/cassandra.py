"""Kibana dashboard of the Cassandra analyser: top queries and operations,
errors by type, response time."""


def dashboard(k):
    q = "type:cassandra"
    P = k.P
    objs = [
        k.top_table(P + "cassandra-top-queries", "Top Cassandra queries", "cassandra.request.query", q,
                    label="Query"),
        k.over_time_by(P + "cassandra-ops-over-time", "Cassandra operations over time",
                       "cassandra.request.headers.op", q),
        k.top_table(P + "cassandra-errors", "Cassandra errors", "cassandra.response.error.type",
                    q + " and cassandra.response.headers.op:ERROR", latency_col=False, label="Error type"),
        k.latency(P + "cassandra-latency", "Cassandra response time percentiles", q),
        k.search(P + "cassandra-search-errors", "Cassandra errors", q + " and cassandra.response.headers.op:ERROR",
                 ["cassandra.request.query", "cassandra.response.error.code", "cassandra.response.error.msg",
                  "client.ip", "server.ip"], "Cassandra requests answered with an ERROR frame"),
    ]
    return objs, k.dashboard(P + "cassandra", "[Packetbeat] Cassandra",
                             "Top CQL queries and operations, errors and latency",
                             [(objs[0], 24, 15), (objs[1], 24, 15), (objs[2], 24, 12), (objs[3], 24, 12),
                              (objs[4], 48, 14)], query=q)
