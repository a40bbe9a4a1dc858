"""Who may call what: API tokens with roles and queue scopes, checked by one interceptor."""
