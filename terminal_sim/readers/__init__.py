"""How the station terminal reads a phone: the reader protocol and its implementations."""
