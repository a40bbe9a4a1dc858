"""The service over HTTP/JSON (`--http-port`), transcoded from the contract's google.api.http rules."""
