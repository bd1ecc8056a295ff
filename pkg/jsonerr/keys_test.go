package jsonerr

import (
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDuplicateKeyDeepNesting: the duplicate-key check of a body nested
// thousands of levels deep costs about what the body does, not the
// square of its depth: the path of an object is built only for the error.
func TestDuplicateKeyDeepNesting(t *testing.T) {
	const depth = 9000
	deep := strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
	body := []byte(`{"at":"now","ignored":[` + deep + `,` + deep + `]}`)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	require.NoError(t, duplicateKey(body, "the JSON body"))
	runtime.ReadMemStats(&after)
	// 2 x 9,000 objects, a map each: a few MiB. Paths rebuilt at every
	// level cost 2 x 81 MB.
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(32<<20), "bytes allocated")

	dup := []byte(`{"x":[` + strings.Repeat(`{"a":`, 3) + `{"b":1,"b":2}` + strings.Repeat("}", 3) + `]}`)
	require.EqualError(t, duplicateKey(dup, "the JSON body"), `x[0].a.a.a: key "b" given twice`)
}
