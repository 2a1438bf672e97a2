"""MySQL / MariaDB analyser (Packetbeat's ``protos/mysql``)."""
from worker.protos.mysql.plugin import MysqlPlugin

__all__ = ["MysqlPlugin"]
