package escalation_test

import (
	"os"
	"testing"

	"github.com/rootuip/sre/pkg/testutil"
)

// TestMain drops the migrated stores the tests share (testutil.MigratedBackends).
func TestMain(m *testing.M) {
	code := m.Run()
	testutil.DropMigrated()
	os.Exit(code)
}
