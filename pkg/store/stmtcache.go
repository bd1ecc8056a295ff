package store

import (
	"container/list"
	"context"
	"database/sql/driver"
	"reflect"
	"strings"
	"sync"
)

// SQLite parses the text of every statement it is given unless the
// statement was prepared. Code that writes inside another's transaction
// (the incident hooks of escalation and change, jobs, notifications, the
// timeline) runs tx.ExecContext and tx.QueryContext with SQL text, and
// modernc's SQLite parsed that text on every call: about a tenth of sred's
// CPU under webhook load. The SQLite connections are therefore wrapped so
// that each keeps its most recently run statements prepared, by text, and
// runs a statement given as text through its prepared form.
//
// Only single statements are kept (a text with a ';' before its end runs
// as it is: scripts, migrations). A statement whose rows are still open is
// not run again through its prepared form (SQLite steps one result at a
// time per statement): a second query of the same text while the first's
// rows are open runs as text. Statements evicted from a connection's cache
// are closed once their rows are closed. SQLite re-prepares a statement
// whose schema changed on its own (sqlite3_prepare_v2).

// stmtCacheSize bounds the statements kept prepared per connection.
const stmtCacheSize = 128

// stmtCacheMaxText leaves long texts (multi-row inserts of many rows) out.
const stmtCacheMaxText = 16 << 10

type cachingConnector struct {
	driver.Connector
}

func (c cachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return newCachingConn(dc), nil
}

// cachingConn is a driver connection with a statement cache. database/sql
// uses a connection from one goroutine at a time; mu guards the cache
// anyway, as rows may be closed from a context's watcher.
type cachingConn struct {
	driver.Conn

	mu       sync.Mutex
	byText   map[string]*list.Element // of *cachedStmt
	lru      list.List                // front: most recently used
	hits     int64
	prepared int64
}

type cachedStmt struct {
	text    string
	st      driver.Stmt
	busy    bool // its rows are open
	evicted bool // out of the cache: close it once not busy
}

func newCachingConn(dc driver.Conn) *cachingConn {
	return &cachingConn{Conn: dc, byText: map[string]*list.Element{}}
}

// cacheable reports whether q is one statement the cache may keep.
func cacheable(q string) bool {
	if len(q) > stmtCacheMaxText {
		return false
	}
	i := strings.IndexByte(q, ';')
	return i < 0 || strings.TrimSpace(q[i+1:]) == ""
}

// take returns q's prepared statement marked busy, preparing it if needed;
// nil when q is not cacheable, is busy or fails to prepare (the caller
// then runs q as text, which reports the same error).
func (c *cachingConn) take(ctx context.Context, q string) *cachedStmt {
	if !cacheable(q) {
		return nil
	}
	c.mu.Lock()
	if el, ok := c.byText[q]; ok {
		cs := el.Value.(*cachedStmt)
		if cs.busy {
			c.mu.Unlock()
			return nil
		}
		cs.busy = true
		c.lru.MoveToFront(el)
		c.hits++
		c.mu.Unlock()
		return cs
	}
	c.mu.Unlock()
	pc, ok := c.Conn.(driver.ConnPrepareContext)
	if !ok {
		return nil
	}
	st, err := pc.PrepareContext(ctx, q)
	if err != nil {
		return nil
	}
	cs := &cachedStmt{text: q, st: st, busy: true}
	var evict []*cachedStmt
	c.mu.Lock()
	c.prepared++
	c.byText[q] = c.lru.PushFront(cs)
	for c.lru.Len() > stmtCacheSize {
		old := c.lru.Back()
		o := old.Value.(*cachedStmt)
		c.lru.Remove(old)
		delete(c.byText, o.text)
		o.evicted = true
		if !o.busy {
			evict = append(evict, o)
		}
	}
	c.mu.Unlock()
	for _, o := range evict {
		o.st.Close() //nolint:errcheck
	}
	return cs
}

// release marks cs free again, closing it if it was evicted meanwhile.
func (c *cachingConn) release(cs *cachedStmt) {
	c.mu.Lock()
	cs.busy = false
	closeIt := cs.evicted
	c.mu.Unlock()
	if closeIt {
		cs.st.Close() //nolint:errcheck
	}
}

func (c *cachingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	if cs := c.take(ctx, q); cs != nil {
		defer c.release(cs)
		return cs.st.(driver.StmtExecContext).ExecContext(ctx, args)
	}
	ec, ok := c.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	return ec.ExecContext(ctx, q, args)
}

func (c *cachingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	if cs := c.take(ctx, q); cs != nil {
		rows, err := cs.st.(driver.StmtQueryContext).QueryContext(ctx, args)
		if err != nil {
			c.release(cs)
			return nil, err
		}
		return &cachedRows{Rows: rows, c: c, cs: cs}, nil
	}
	qc, ok := c.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	return qc.QueryContext(ctx, q, args)
}

// Close closes the cached statements, then the connection.
func (c *cachingConn) Close() error {
	c.mu.Lock()
	var sts []driver.Stmt
	for el := c.lru.Front(); el != nil; el = el.Next() {
		sts = append(sts, el.Value.(*cachedStmt).st)
	}
	c.lru.Init()
	c.byText = map[string]*list.Element{}
	c.mu.Unlock()
	for _, st := range sts {
		st.Close() //nolint:errcheck
	}
	return c.Conn.Close()
}

// The other interfaces of the driver's connection, passed through.

func (c *cachingConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	if pc, ok := c.Conn.(driver.ConnPrepareContext); ok {
		return pc.PrepareContext(ctx, q)
	}
	return c.Conn.Prepare(q)
}

func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if bc, ok := c.Conn.(driver.ConnBeginTx); ok {
		return bc.BeginTx(ctx, opts)
	}
	return c.Conn.Begin() //nolint:staticcheck // the fallback database/sql itself uses
}

func (c *cachingConn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *cachingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *cachingConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// cachedRows are the rows of a cached statement: closing them frees it.
type cachedRows struct {
	driver.Rows
	c    *cachingConn
	cs   *cachedStmt
	once sync.Once
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	r.once.Do(func() { r.c.release(r.cs) })
	return err
}

func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *cachedRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *cachedRows) ColumnTypeNullable(i int) (bool, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *cachedRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

var (
	_ driver.ExecerContext      = (*cachingConn)(nil)
	_ driver.QueryerContext     = (*cachingConn)(nil)
	_ driver.ConnPrepareContext = (*cachingConn)(nil)
	_ driver.ConnBeginTx        = (*cachingConn)(nil)
	_ driver.Pinger             = (*cachingConn)(nil)
	_ driver.SessionResetter    = (*cachingConn)(nil)
	_ driver.Validator          = (*cachingConn)(nil)
)
