"""Where results go: small store interfaces with embedded (local) and production backends."""
