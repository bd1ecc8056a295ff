//go:build race

package escalation_test

// bulkIncidents is the volume of TestMigrateSQLiteToPostgres under the race
// detector, which makes the 100,000-incident move take longer than the
// package's time limit on 2 cores: the same test with the same checks on
// 10,000 incidents. `make test` also runs it without the race detector on
// 100,000 (volume_norace_test.go).
const bulkIncidents = 10_000
