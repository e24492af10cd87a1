"""How the station terminal reads a phone: the reader protocol, its implementations (QR scanner,
PC/SC, nfcpy) and what can go wrong while reading."""
