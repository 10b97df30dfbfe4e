"""Small maintenance commands used by ./dev and CI."""
