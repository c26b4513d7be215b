"""Protocol-faithful emulator of EDITO: Keycloak tokens, MinIO-like STS and S3 (moto)."""

from remotefs.testing.edito.emulator import EditoEmulator

__all__ = ["EditoEmulator"]
