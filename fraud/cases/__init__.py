"""Cases: the alerts of one card grouped for one investigation."""
