"""PostgreSQL frontend/backend protocol v3 analyser (Packetbeat ``protos/pgsql``)."""
from worker.protos.pgsql.plugin import PgsqlPlugin

__all__ = ["PgsqlPlugin"]
