"""Kibana dashboard of the AMQP analyser: methods, queues and exchanges,
broker errors (closes with their reply codes, returned messages), message
sizes and latency of the synchronous methods."""


def dashboard(k):
    q = "type:amqp"
    P = k.P
    objs = [
        k.top_table(P + "amqp-top-methods", "Top AMQP methods", "method", q, label="Method"),
        k.over_time_by(P + "amqp-methods-over-time", "AMQP methods over time", "method", q),
        k.top_table(P + "amqp-top-queues", "Top queues", "amqp.queue", q, latency_col=False, label="Queue"),
        k.top_table(P + "amqp-top-exchanges", "Top exchanges (publish / deliver)", "amqp.exchange",
                    q + " and (method:basic.publish or method:basic.deliver)", latency_col=False, label="Exchange"),
        k.count_metric(P + "amqp-errors-count", "AMQP errors", q + " and not status:OK"),
        k.share(P + "amqp-reply-codes", "Broker reply codes (closes, returns)", "amqp.reply-code",
                q + " and not status:OK and (method:channel.close or method:connection.close or method:basic.return)",
                number=True),
        k.latency(P + "amqp-latency", "AMQP response time percentiles (synchronous methods)",
                  q + " and not (method:basic.publish or method:basic.deliver or method:basic.return "
                      "or method:basic.ack or method:basic.nack or method:basic.reject)"),
        k.search(P + "amqp-search-errors", "AMQP errors", q + " and not status:OK",
                 ["method", "amqp.reply-code", "amqp.reply-text", "amqp.queue", "amqp.exchange", "client.ip",
                  "server.ip", "error.message"],
                 "Closes with an error reply code, returned and rejected messages, unanswered methods"),
    ]
    return objs, k.dashboard(P + "amqp", "[Packetbeat] AMQP",
                             "AMQP methods, queues, exchanges, broker errors and latency",
                             [(objs[0], 24, 15), (objs[1], 24, 15), (objs[2], 16, 14), (objs[3], 16, 14),
                              (objs[4], 16, 14), (objs[5], 24, 14), (objs[6], 24, 14), (objs[7], 48, 14)],
                             query=q)
