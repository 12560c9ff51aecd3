"""The registry side: the clients' auth files (lock, merge, owner), login records, the credential
helper's token cache, the login clients and the built-in registry client."""
