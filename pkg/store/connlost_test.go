package store_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/store"
)

func TestConnectionLost(t *testing.T) {
	// A connection attempt while the server is down (its restart): here
	// to a port where nothing listens.
	_, refused := pgconn.Connect(context.Background(), "postgres://postgres@127.0.0.1:22999/x?connect_timeout=5")
	require.Error(t, refused)
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"bad connection", fmt.Errorf("commit: %w", driver.ErrBadConn), true},
		{"session terminated", fmt.Errorf("complete job 1: %w", &pgconn.PgError{Severity: "FATAL", Code: "57P01"}), true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"server restarting", fmt.Errorf("begin transaction: %w", refused), true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"deadlock", &pgconn.PgError{Code: "40P01"}, false},
		{"other", errors.New("write notification to timeline: no such table"), false},
	} {
		require.Equal(t, tc.want, store.ConnectionLost(tc.err), tc.name)
	}
}
