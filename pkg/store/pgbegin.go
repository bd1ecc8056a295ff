package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
)

// The PostgreSQL connections sred's pools open are pgx's database/sql
// connections (stdlib.Conn) with two changes, each a round trip less per
// transaction:
//
//   - A transaction's BEGIN is not a round trip of its own. database/sql
//     sends BEGIN when the transaction starts and waits for its answer,
//     and every transaction sred runs then sends its first statement;
//     here BEGIN waits and goes with that statement in one pipeline (pgx's
//     batch: the messages of both, one Sync, one answer). The transaction,
//     its statements and their errors are the same: BEGIN runs first, and
//     the statement inside the transaction it opens. A transaction that
//     runs no statement sends nothing. An exec without arguments, which
//     pgx sends as a simple query that may hold several statements (a
//     migration's), is sent alone after what waits.
//   - A write run with a context marked by AtCommit, whose answer the
//     caller does not need (the last write of a delivery or of an
//     escalation step), waits and goes with the transaction's next
//     statement or with its COMMIT.
//
// Transactions with options (isolation, read only) begin as pgx's do.
type pgConnector struct {
	driver.Connector
}

func (c pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc, ok := dc.(*stdlib.Conn)
	if !ok {
		dc.Close()
		return nil, fmt.Errorf("open postgres: unexpected driver connection %T", dc)
	}
	return &pgConn{Conn: sc}, nil
}

// pgConn is a stdlib.Conn whose transactions send BEGIN with their first
// statement.
type pgConn struct {
	*stdlib.Conn
	// inTx: a transaction begun here is open; begin: its BEGIN is not
	// sent yet.
	inTx, begin bool
	// atCommit are the transaction's writes waiting to go with its next
	// statement or its COMMIT (AtCommit).
	atCommit []queued
	// txCtx is the transaction's context, for its COMMIT or ROLLBACK (as
	// stdlib's transactions do).
	txCtx context.Context
}

var (
	_ driver.ConnBeginTx        = (*pgConn)(nil)
	_ driver.ExecerContext      = (*pgConn)(nil)
	_ driver.QueryerContext     = (*pgConn)(nil)
	_ driver.ConnPrepareContext = (*pgConn)(nil)
	_ driver.SessionResetter    = (*pgConn)(nil)
	_ driver.NamedValueChecker  = (*pgConn)(nil)
)

func (c *pgConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *pgConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if c.Conn.Conn().IsClosed() {
		return nil, driver.ErrBadConn
	}
	if opts.Isolation != driver.IsolationLevel(0) || opts.ReadOnly {
		return c.Conn.BeginTx(ctx, opts)
	}
	c.inTx, c.begin, c.txCtx, c.atCommit = true, true, ctx, nil
	return pgTx{c}, nil
}

// PrepareContext prepares query outside any transaction, as PostgreSQL
// allows; the statement runs through the connection (a waiting BEGIN goes
// with it).
func (c *pgConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	st, err := c.Conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return &pgStmt{Stmt: st.(*stdlib.Stmt), c: c, query: query}, nil
}

func (c *pgConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// pgStmt is a prepared statement run through pgConn, not straight
// through the stdlib.Conn (which would run it outside a transaction whose
// BEGIN waits), as stdlib.Stmt runs it: by its text, which pgx finds
// among the connection's prepared statements.
type pgStmt struct {
	*stdlib.Stmt
	c     *pgConn
	query string
}

func (s *pgStmt) ExecContext(ctx context.Context, argsV []driver.NamedValue) (driver.Result, error) {
	return s.c.ExecContext(ctx, s.query, argsV)
}

func (s *pgStmt) QueryContext(ctx context.Context, argsV []driver.NamedValue) (driver.Rows, error) {
	return s.c.QueryContext(ctx, s.query, argsV)
}

// queued is a write waiting to be sent (AtCommit).
type queued struct {
	query string
	args  []any
}

// waiting reports whether a statement now would carry BEGIN or writes
// with it.
func (c *pgConn) waiting() bool { return c.begin || len(c.atCommit) > 0 }

// pipeline sends a waiting BEGIN, the waiting writes and query in one
// batch, and reads the answers of all but query's; the caller reads
// query's from the batch and closes it.
func (c *pgConn) pipeline(ctx context.Context, query string, args []any) (pgx.BatchResults, error) {
	begin, writes := c.begin, c.atCommit
	c.begin, c.atCommit = false, nil
	b := &pgx.Batch{}
	if begin {
		b.Queue("begin")
	}
	for _, w := range writes {
		b.Queue(w.query, w.args...)
	}
	b.Queue(query, args...)
	br := c.Conn.Conn().SendBatch(ctx, b)
	if begin {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return nil, sentWith("begin", err)
		}
	}
	for range writes {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return nil, sentWith("write sent at commit", err)
		}
	}
	return br, nil
}

// sentWith names the statement of a batch whose answer was err. pgx
// answers a statement of the batch that could not be prepared (a syntax
// error, an unknown table: any of them, often the last) at the first
// one: that error names the problem itself.
func sentWith(what string, err error) error {
	var pre pgx.ErrPreprocessingBatch
	if errors.As(err, &pre) {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

func namedArgs(argsV []driver.NamedValue) []any {
	args := make([]any, len(argsV))
	for i, v := range argsV {
		args[i] = v.Value
	}
	return args
}

// atCommitKey marks a context whose write waits for the transaction's
// next statement or COMMIT (AtCommit).
type atCommitKey struct{}

// AtCommit marks ctx for a write, in a PostgreSQL transaction, whose
// answer the caller does not read: ExecContext with it sends nothing, and
// the write goes with the transaction's next statement or its COMMIT, in
// the same round trip (pgx's batch, in order). Its error is then the
// answer of that statement or of Commit; its result tells no rows
// affected (RowsAffected fails). Outside such a transaction, and on
// SQLite, the write runs at once, as without the mark. Mark the context
// of that call only: every write run with it waits. Its arguments are
// sent later: the caller must not change what they point to (a reused
// []byte) before the transaction ends.
func AtCommit(ctx context.Context) context.Context {
	return context.WithValue(ctx, atCommitKey{}, true)
}

// waitingResult is the result of a write not yet sent.
type waitingResult struct{}

func (waitingResult) LastInsertId() (int64, error) {
	return 0, errors.New("LastInsertId is not supported by this driver")
}

func (waitingResult) RowsAffected() (int64, error) {
	return 0, errors.New("rows affected: the write is sent with the transaction's next statement or commit (store.AtCommit)")
}

func (c *pgConn) ExecContext(ctx context.Context, query string, argsV []driver.NamedValue) (driver.Result, error) {
	if c.inTx && ctx.Value(atCommitKey{}) != nil {
		c.atCommit = append(c.atCommit, queued{query, namedArgs(argsV)})
		return waitingResult{}, nil
	}
	if !c.waiting() {
		return c.Conn.ExecContext(ctx, query, argsV)
	}
	if len(argsV) == 0 {
		// pgx runs an exec without arguments as a simple query, which
		// may hold several statements (a migration's); a batch may not.
		if err := c.flush(ctx); err != nil {
			return nil, err
		}
		return c.Conn.ExecContext(ctx, query, argsV)
	}
	br, err := c.pipeline(ctx, query, namedArgs(argsV))
	if err != nil {
		return nil, err
	}
	tag, err := lastExec(br)
	if err != nil {
		return nil, err
	}
	return driver.RowsAffected(tag.RowsAffected()), nil
}

// flush sends a waiting BEGIN and the waiting writes, and reads their
// answers.
func (c *pgConn) flush(ctx context.Context) error {
	if len(c.atCommit) == 0 {
		c.begin = false
		if _, err := c.Conn.Conn().Exec(ctx, "begin"); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		return nil
	}
	last := c.atCommit[len(c.atCommit)-1]
	c.atCommit = c.atCommit[:len(c.atCommit)-1]
	br, err := c.pipeline(ctx, last.query, last.args)
	if err != nil {
		return err
	}
	if _, err := lastExec(br); err != nil {
		return fmt.Errorf("write sent at commit: %w", err)
	}
	return nil
}

// lastExec reads the answer of a batch's last statement, an exec, and
// closes the batch.
func lastExec(br pgx.BatchResults) (pgconn.CommandTag, error) {
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

func (c *pgConn) QueryContext(ctx context.Context, query string, argsV []driver.NamedValue) (driver.Rows, error) {
	if !c.waiting() {
		return c.Conn.QueryContext(ctx, query, argsV)
	}
	br, err := c.pipeline(ctx, query, namedArgs(argsV))
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		rows.Close()
		br.Close()
		return nil, err
	}
	// As stdlib does: the first row is read now, so that an error is the
	// query's answer and the columns are known.
	more := rows.Next()
	if err := rows.Err(); err != nil {
		rows.Close()
		br.Close()
		return nil, err
	}
	return &pgRows{rows: rows, br: br, typeMap: c.Conn.Conn().TypeMap(), first: true, more: more}, nil
}

func (c *pgConn) ResetSession(ctx context.Context) error {
	c.inTx, c.begin, c.atCommit = false, false, nil
	return c.Conn.ResetSession(ctx)
}

// pgTx ends a transaction begun by pgConn.BeginTx: with nothing sent,
// there is nothing to end.
type pgTx struct{ c *pgConn }

func (t pgTx) Commit() error {
	c := t.c
	c.inTx = false
	if c.begin && len(c.atCommit) == 0 {
		c.begin = false // nothing was run
		return nil
	}
	var tag pgconn.CommandTag
	var err error
	if c.waiting() {
		var br pgx.BatchResults
		if br, err = c.pipeline(c.txCtx, "commit", nil); err == nil {
			tag, err = lastExec(br)
		}
		if err != nil {
			// A write sent with COMMIT failed, and COMMIT was not run:
			// the transaction is to be rolled back.
			if rerr := t.rollback(); rerr != nil {
				return errors.Join(err, rerr)
			}
			return err
		}
	} else if tag, err = c.Conn.Conn().Exec(c.txCtx, "commit"); err != nil {
		return err
	}
	if tag.String() == "ROLLBACK" {
		// The transaction had failed: PostgreSQL rolled it back.
		return pgx.ErrTxCommitRollback
	}
	return nil
}

func (t pgTx) Rollback() error {
	c := t.c
	c.inTx, c.atCommit = false, nil
	if c.begin {
		c.begin = false
		return nil
	}
	return t.rollback()
}

func (t pgTx) rollback() error {
	if _, err := t.c.Conn.Conn().Exec(t.c.txCtx, "rollback"); err != nil {
		// The connection may still be in the transaction: not to be used
		// again (database/sql discards it).
		return errors.Join(driver.ErrBadConn, err)
	}
	return nil
}

// pgRows is the driver's rows of a query sent with BEGIN, converted to
// database/sql's values as stdlib.Rows converts them.
type pgRows struct {
	rows        pgx.Rows
	br          pgx.BatchResults
	typeMap     *pgtype.Map
	valueFuncs  []func(src []byte) (driver.Value, error)
	first, more bool
	columns     []string
}

func (r *pgRows) Columns() []string {
	if r.columns == nil {
		fds := r.rows.FieldDescriptions()
		r.columns = make([]string, len(fds))
		for i, fd := range fds {
			r.columns[i] = fd.Name
		}
	}
	return r.columns
}

func (r *pgRows) Close() error {
	r.rows.Close()
	err := r.rows.Err()
	if cerr := r.br.Close(); err == nil {
		err = cerr
	}
	return err
}

func (r *pgRows) Next(dest []driver.Value) error {
	if r.valueFuncs == nil {
		r.initValueFuncs()
	}
	more := r.more
	if r.first {
		r.first = false
	} else {
		more = r.rows.Next()
	}
	if !more {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return io.EOF
	}
	for i, rv := range r.rows.RawValues() {
		if rv == nil {
			dest[i] = nil
			continue
		}
		v, err := r.valueFuncs[i](rv)
		if err != nil {
			return fmt.Errorf("convert field %d failed: %w", i, err)
		}
		dest[i] = v
	}
	return nil
}

// initValueFuncs chooses each column's conversion: the Go types
// stdlib.Rows gives database/sql for the types sred's schema uses (bool,
// integers, floats, bytea, json) and text for the others.
func (r *pgRows) initValueFuncs() {
	fds := r.rows.FieldDescriptions()
	r.valueFuncs = make([]func([]byte) (driver.Value, error), len(fds))
	for i, fd := range fds {
		r.valueFuncs[i] = valueFunc(r.typeMap, fd.DataTypeOID, fd.Format)
	}
}

func valueFunc(m *pgtype.Map, oid uint32, format int16) func([]byte) (driver.Value, error) {
	switch oid {
	case pgtype.BoolOID:
		return scanAs[bool](m, oid, format, func(d bool) driver.Value { return d })
	case pgtype.ByteaOID, pgtype.JSONOID, pgtype.JSONBOID:
		return scanAs[[]byte](m, oid, format, func(d []byte) driver.Value { return d })
	case pgtype.Float4OID:
		return scanAs[float32](m, oid, format, func(d float32) driver.Value { return float64(d) })
	case pgtype.Float8OID:
		return scanAs[float64](m, oid, format, func(d float64) driver.Value { return d })
	case pgtype.Int2OID:
		return scanAs[int16](m, oid, format, func(d int16) driver.Value { return int64(d) })
	case pgtype.Int4OID:
		return scanAs[int32](m, oid, format, func(d int32) driver.Value { return int64(d) })
	case pgtype.Int8OID:
		return scanAs[int64](m, oid, format, func(d int64) driver.Value { return d })
	case pgtype.TimestamptzOID:
		return func(src []byte) (driver.Value, error) {
			var d pgtype.Timestamptz
			if err := m.PlanScan(oid, format, &d).Scan(src, &d); err != nil {
				return nil, err
			}
			return d.Value()
		}
	default:
		return scanAs[string](m, oid, format, func(d string) driver.Value { return d })
	}
}

func scanAs[T any](m *pgtype.Map, oid uint32, format int16, value func(T) driver.Value) func([]byte) (driver.Value, error) {
	var d T
	plan := m.PlanScan(oid, format, &d)
	return func(src []byte) (driver.Value, error) {
		if err := plan.Scan(src, &d); err != nil {
			return nil, err
		}
		return value(d), nil
	}
}
