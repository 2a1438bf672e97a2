"""`packetbeat top`'s reading of the metrics endpoint: a slow instance is not a gone one."""
import socket
import threading

import pytest

from coordinator.top import TopError, TopTimeout, fetch


def test_an_endpoint_that_does_not_answer_in_time_is_a_timeout():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    held = []
    t = threading.Thread(target=lambda: held.append(srv.accept()), daemon=True)
    t.start()
    try:
        with pytest.raises(TopTimeout, match="did not answer within 0.3 s"):
            fetch("http://127.0.0.1:%d" % srv.getsockname()[1], timeout=0.3)
    finally:
        t.join(5)
        for conn, _ in held:
            conn.close()
        srv.close()


def test_a_closed_port_is_gone_not_slow():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(TopError, match="no metrics endpoint") as info:
        fetch("http://127.0.0.1:%d" % port, timeout=2)
    assert not isinstance(info.value, TopTimeout)
