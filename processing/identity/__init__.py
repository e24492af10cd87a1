"""Who is signing in: passwords, sign-in sessions with rotating refresh tokens, JWT access tokens.

Shared by every surface with users (driver app, fleet cabinet, fraud console); each surface
passes its own JWT audience, so a token made for one is refused by the others.
"""
