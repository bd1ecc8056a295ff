package store

import (
	"context"
	"database/sql"
)

// RowQuerier runs queries: a *sql.Tx, or the *sql.Conn a transaction runs
// on (TxQueries).
type RowQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type txConnKey struct{}

type txConn struct {
	tx   *sql.Tx
	conn *sql.Conn
}

// WithTxConn marks ctx as the context of a write that runs in tx, a
// transaction on conn that only its owner ends, after the write returned
// (the incident service's SQLite writer, which runs every write of its
// batch in one transaction): TxQueries(ctx, tx) then runs queries on conn.
func WithTxConn(ctx context.Context, tx *sql.Tx, conn *sql.Conn) context.Context {
	return context.WithValue(ctx, txConnKey{}, txConn{tx, conn})
}

// TxQueries returns what runs the queries of tx for ctx: tx itself, or,
// when ctx cannot end and was marked for tx by WithTxConn, the connection
// tx runs on. A query run there runs inside tx (one SQLite connection,
// one transaction) without the goroutine database/sql starts for the rows
// of every query of a transaction, to close them if the transaction's
// context ends first (Rows.awaitDone): a transaction's context always can
// (BeginTx derives a cancellable one), so every query of a hook run by the
// writer started one, created and scheduled by the writer's goroutine,
// whose time bounds ingestion. The rows must be closed before the write
// returns, as any rows of a transaction.
func TxQueries(ctx context.Context, tx *sql.Tx) RowQuerier {
	if ctx.Done() == nil {
		if c, ok := ctx.Value(txConnKey{}).(txConn); ok && c.tx == tx && c.conn != nil {
			return c.conn
		}
	}
	return tx
}
