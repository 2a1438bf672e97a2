"""The product version (reported as agent.version and by `packetbeat version`)."""
VERSION = "0.1.0"
