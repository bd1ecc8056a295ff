//go:build !race

package escalation_test

// bulkIncidents is the volume of TestMigrateSQLiteToPostgres: 100,000
// incidents. `make test` runs it without the race detector, after the
// suite (see volume_race_test.go).
const bulkIncidents = 100_000
