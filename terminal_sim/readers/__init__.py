"""The terminal's card readers: each reads one token from a phone and says clearly what went wrong."""
