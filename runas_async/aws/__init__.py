"""The AWS side: token provider, credential resolver, MFA, awscli's cache, the config files, the
botocore error boundary, the private transport hooks and the start-up connections."""
