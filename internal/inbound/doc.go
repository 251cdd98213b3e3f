// Package inbound verifies users' JWTs against inbound JWT authorizers
// configured like AgentCore Identity's customJWTAuthorizer: a discovery
// URL plus allowed audiences, clients, scopes and custom-claim rules, all
// of which must pass.
//
// A Set holds every configured authorizer. Set.Verify chooses authorizers
// by the token's iss, verifies the JWS signature with the issuer's JWKS
// (discovered lazily, cached, refreshed in the background, refetched at most
// once per interval on an unknown kid), checks exp/nbf/iat with a bounded
// leeway, then applies the authorizers' rules. It returns the Identity of
// the user or an *Error whose Kind says what went wrong and whose Message
// is safe to return to the API caller.
//
// What Verify refuses, beyond RFC 7519 §7.2:
//   - tokens over Options.MaxTokenBytes, before any parsing;
//   - anything but the JWS compact serialization: JWE, JSON serialization,
//     nested tokens (cty), non-canonical base64url;
//   - algorithms outside RS*, PS*, ES*, EdDSA (RFC 8725 §3.1): no "none",
//     no HS* keyed with a public key;
//   - header parameters that bring their own key (jwk, jku, x5u, x5c) and
//     any crit (RFC 7515 §4.1.11; RFC 8725 §3.10);
//   - typ values of other JWT profiles such as dpop+jwt (RFC 8725 §3.11);
//   - duplicate JSON members and trailing data (RFC 8725 §3.12);
//   - JWKS keys marked for encryption or whose alg, type or curve does not
//     fit the token's alg, and RSA keys under 2048 bits.
//
// Non-goals: Verify does NOT decrypt JWE, does NOT check nonce, at_hash or
// jti (no replay detection), does NOT implement AgentCore's
// advertisedScopeMapping, allowedWorkloadConfiguration or private
// endpoints, and does NOT guard against SSRF beyond requiring https: the
// discovery URLs come from the operator's configuration.
package inbound
