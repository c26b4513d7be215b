"""Authentication shared by every service: tokens that renew themselves, OAuth2 grants,
and the private credential store."""

from remotefs.auth.oauth2 import OAuth2Client
from remotefs.auth.tokens import Token, TokenAuth, TokenProvider

__all__ = ["OAuth2Client", "Token", "TokenAuth", "TokenProvider"]
