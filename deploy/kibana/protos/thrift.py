"""Kibana dashboard of the Thrift-RPC analyser: top methods and services,
calls over time, exceptions and latency."""


def dashboard(k):
    q = "type:thrift"
    errors = q + " and not status:OK"
    objs = [
        k.top_table(k.P + "thrift-top-methods", "Top Thrift methods", "method", q, label="Method"),
        k.over_time_by(k.P + "thrift-calls-over-time", "Thrift calls over time by service", "thrift.service", q),
        k.top_table(k.P + "thrift-top-services", "Thrift services", "thrift.service", q, label="Service"),
        k.count_metric(k.P + "thrift-errors-count", "Thrift calls with an exception or no reply", errors),
        k.top_table(k.P + "thrift-exceptions", "Thrift exceptions", "thrift.exceptions", errors,
                    latency_col=False, label="Exceptions"),
        k.latency(k.P + "thrift-latency", "Thrift response time percentiles", q),
        k.search(k.P + "thrift-search-errors", "Thrift errors", errors,
                 ["method", "thrift.service", "thrift.params", "thrift.exceptions", "client.ip", "server.ip"],
                 "Thrift calls answered with an exception, or without a reply"),
    ]
    return objs, k.dashboard(k.P + "thrift", "[Packetbeat] Thrift", "Top Thrift methods, services, exceptions "
                             "and latency",
                             [(objs[0], 24, 15), (objs[1], 24, 15), (objs[2], 18, 12), (objs[3], 12, 12),
                              (objs[4], 18, 12), (objs[5], 24, 14), (objs[6], 24, 14)], query=q)
