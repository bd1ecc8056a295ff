package cli

import (
	"fmt"
	"strconv"

	"github.com/rootuip/sre/pkg/limits"
)

// idValue is a positive integer argument (a runbook run or change id) as
// kingpin reads it: a value that is not one is refused naming the argument
// and quoting the value cut at 64 bytes ("run ID "abc": want a positive
// integer"), not in strconv's words with the value whole.
type idValue struct {
	n    *int64
	what string
}

// Set implements kingpin.Value.
func (v *idValue) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return fmt.Errorf("%s %s: want a positive integer", v.what, limits.Quote(s))
	}
	*v.n = n
	return nil
}

// String implements kingpin.Value.
func (v *idValue) String() string { return strconv.FormatInt(*v.n, 10) }
