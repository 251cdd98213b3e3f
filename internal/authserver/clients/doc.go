// Package clients says who the authorization server's clients are and how
// they authenticate.
//
// A client is one of three kinds:
//   - pre-registered, from behalf's configuration;
//   - named by a Client ID Metadata Document (draft-ietf-oauth-client-id-
//     metadata-document, the MCP authorization spec's preferred way): the
//     client_id is an https URL, and the JSON document there is the
//     client's metadata, fetched through the egress-policed client and
//     cached in memory;
//   - registered dynamically (RFC 7591), stored with the SHA-256 of its
//     secret.
//
// Registry.Resolve finds a client for the authorization endpoint;
// Registry.Authenticate authenticates one at the token, revocation and
// introspection endpoints (RFC 6749 §2.3: none, client_secret_basic,
// client_secret_post, and RFC 7523 §2.2 private_key_jwt); Registry.Register
// is the RFC 7591 registration endpoint.
//
// Non-goals: no client configuration endpoint (RFC 7592), no software
// statements, no tls_client_auth (RFC 8705), no client secrets for clients
// named by a metadata document (the draft forbids them).
package clients
