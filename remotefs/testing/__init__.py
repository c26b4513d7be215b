"""Test servers: service emulators, a server thread/CLI runner and fault injection."""
