"""The client's version: the server's (``Cargo.toml``'s workspace version), released together."""

__version__ = "0.1.0"
