"""remotefs: remote research platforms as ordinary fsspec filesystems.

Importing the package stays cheap: filesystems and job backends load on first use, and the
fsspec protocols (``agave://``, ...) are registered by entry point, not by this import.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
