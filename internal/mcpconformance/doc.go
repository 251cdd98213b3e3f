// Package mcpconformance runs the official MCP conformance suite's client
// authorization scenarios against behalf as an MCP client's credential
// broker. Its tests are the whole package: TestClient is the client the
// suite spawns (every token it sends comes from behalf's
// GetResourceOauth2Token), TestAuthScenarios runs the suite against it.
package mcpconformance
