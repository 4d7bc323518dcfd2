"""MCP servers the tests run: stdio scripts written with the official SDK (and one that
breaks the protocol on purpose), and in-process SDK servers over memory streams."""
