package store

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
)

// TestRunAgain: a transaction PostgreSQL rolled back to break a deadlock
// (or for a serialization failure) runs again, up to RetryableRuns runs in
// all; any other error ends it at once, as does the context's end.
func TestRunAgain(t *testing.T) {
	deadlock := fmt.Errorf("acknowledge: %w", &pgconn.PgError{Code: "40P01"})
	serialization := &pgconn.PgError{Code: "40001"}
	other := errors.New("no such incident")
	cases := []struct {
		name     string
		errs     []error // the answer of each run; nil after the last
		wantRuns int
		wantErr  error
	}{
		{"succeeds at once", nil, 1, nil},
		{"deadlock then success", []error{deadlock}, 2, nil},
		{"deadlocked twice, third run succeeds", []error{deadlock, serialization}, 3, nil},
		{"deadlocked every run", []error{deadlock, deadlock, deadlock, deadlock}, RetryableRuns, deadlock},
		{"other error", []error{other}, 1, other},
		{"deadlock then other error", []error{deadlock, other}, 2, other},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			runs := 0
			err := RunAgain(context.Background(), func() error {
				runs++
				if runs <= len(c.errs) {
					return c.errs[runs-1]
				}
				return nil
			})
			require.Equal(t, c.wantRuns, runs)
			require.Equal(t, c.wantErr, err)
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	runs := 0
	err := RunAgain(ctx, func() error { runs++; return deadlock })
	require.Equal(t, 1, runs, "no run after the context's end")
	require.Equal(t, deadlock, err)
}
