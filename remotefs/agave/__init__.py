"""Agave v2 (Tapis v2): the ``agave://`` filesystem and the account operations of the seed.

``AgaveFileSystem`` is registered with fsspec as the ``agave`` protocol by entry point.
``AgaveAccount`` lists and creates OAuth clients, gets and refreshes tokens and reads the
caller's profile (``whoami``).
"""

from remotefs.agave.account import DEFAULT_BASE_URL, AgaveAccount
from remotefs.agave.filesystem import AgaveFileSystem

__all__ = ["DEFAULT_BASE_URL", "AgaveAccount", "AgaveFileSystem"]
