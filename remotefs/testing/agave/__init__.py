"""Protocol-faithful emulator of the Agave v2 ("Tapis v2") APIs remotefs talks to."""

from remotefs.testing.agave.app import AgaveEmulator

__all__ = ["AgaveEmulator"]
