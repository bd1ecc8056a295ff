package store_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/store"
)

// TestTxQueries: a transaction's queries run on its connection only for a
// context marked for that transaction that cannot end; otherwise on the
// transaction. Either way they see the transaction's writes.
func TestTxQueries(t *testing.T) {
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	conn, err := db.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer tx.Rollback() //nolint:errcheck
	_, err = tx.ExecContext(ctx, `CREATE TABLE t (v INTEGER)`)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, `INSERT INTO t (v) VALUES (7)`)
	require.NoError(t, err)

	mem, err := store.OpenSQLiteMemory(ctx) // another database, for another transaction
	require.NoError(t, err)
	t.Cleanup(func() { mem.Close() })
	other, err := mem.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer other.Rollback() //nolint:errcheck

	marked := store.WithTxConn(ctx, tx, conn)
	cancellable, cancel := context.WithCancel(marked)
	defer cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		tx   *sql.Tx
		want any
	}{
		{"marked", marked, tx, conn},
		{"not marked", ctx, tx, tx},
		{"marked for another transaction", marked, other, other},
		{"can end", cancellable, tx, tx},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Same(t, tc.want, store.TxQueries(tc.ctx, tc.tx))
		})
	}
	var v int
	require.NoError(t, store.TxQueries(marked, tx).QueryRowContext(marked, `SELECT v FROM t`).Scan(&v))
	require.Equal(t, 7, v, "the connection's query sees the transaction's row")
}
