// Package repotest holds tests of the repository itself rather than of
// behalf's behaviour: invariants that a review would otherwise have to catch.
//
//   - No tracked file is a compiled binary (ELF, Mach-O, PE) or other
//     non-text content outside an allow-list, and none is over 1 MiB.
//   - Every Go package has a package doc comment.
//   - behalf's go.mod has no replace directive, so what builds here builds
//     for anyone who imports it.
//   - No non-test Go file cites a document that is not in the repository;
//     comments cite RFC sections, AgentCore API operations, or docs/.
//   - No non-test Go function, declared or literal, is 80 lines or longer,
//     except the CLI's new…Command builders and the test-support packages
//     (internal/storage/conformance, internal/testutil/...,
//     internal/inbound/inboundtest).
//
// The package has no code besides this comment; the tests find the
// repository root from their own directory, and the tests that read the
// git index skip, saying so, when git or the .git directory is unavailable
// (a source archive, for example).
package repotest
