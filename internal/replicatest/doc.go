// Package replicatest tests behalf as it runs in production with more than
// one replica: real `behalf serve` processes sharing one PostgreSQL
// database and one keyring, driven through the official AWS SDK clients,
// with a real OAuth provider (Dex, in the test process) that rotates
// refresh tokens.
//
// It holds tests only. They show the two properties of the refresh path
// that users of other products lose connections to (docs/user-federation.md
// explains refresh and its lease):
//
//   - Concurrency: many callers spread across two replicas, for one expired
//     token, cause exactly one upstream refresh, all get the same new
//     token, and the rotated refresh token is stored (the next refresh,
//     which a strict provider accepts only with the newest token,
//     succeeds).
//   - Crashes: replicas killed with SIGKILL at random moments and
//     deliberately in the middle of a refresh lose no credential, as long
//     as the provider's reuse window for a rotated refresh token outlasts
//     behalf's refresh lease (15 seconds). The one window no design
//     closes — the provider rotated, the replica died before it stored
//     the answer, and the provider grants no reuse window — has a test of
//     its own that states what behalf does then.
//
// Two more tests hold the lease to account: what callers get while a dead
// replica's lease blocks refreshes, and what happens when a provider
// answers after the lease ran out.
//
// The tests need PostgreSQL (BEHALF_TEST_POSTGRES_DSN, see pgtest) and
// Linux (the replicas die with the test process through Pdeathsig). They
// build the behalf binary once, without -race, from the module this
// package belongs to. The crash tests spend most of their time waiting
// for leases to run out, so TestMain runs them together (-test.parallel 8
// unless given). Run them with -v to see the counts they report.
package replicatest
