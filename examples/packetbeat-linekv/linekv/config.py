"""LINEKV options: the ones every protocol has (``ProtocolCommon``) and one of its own."""
from __future__ import annotations

from dataclasses import dataclass, field

from shared.confutil import ConfigError
from worker.plugin import ProtocolCommon
from worker.protos.glue import check_ports


@dataclass(frozen=True)
class LineKvConfig(ProtocolCommon):
    ports: list[int] = field(default_factory=lambda: [7379])
    max_line: int = 4096            # longest line kept; a longer one is a parse error (resync)

    def validate(self, path: str) -> None:
        check_ports(self.ports, path)
        if self.max_line < 16:
            raise ConfigError(path + ".max_line" if path else "max_line", "must be >= 16, got %d" % self.max_line)
