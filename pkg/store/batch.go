package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// Batch collects the writes of one transaction that depend on nothing
// written by each other, to run them in one round trip on PostgreSQL: the
// last write is the statement, the others data-modifying WITH queries of
// it (w0, w1, ...). On SQLite, where a statement costs no round trip, they
// run one after another, in the order added.
//
// What one PostgreSQL statement implies, and so what may be batched:
// every write sees the database as it was before the statement, so no
// write may read or change a row another write of the batch inserts or
// changes (an UPDATE or a WHERE EXISTS of a row inserted in the batch sees
// nothing; two upserts of one row fail), and foreign keys are checked once
// all the writes have run. Each write runs exactly once and to completion.
type Batch struct {
	writes []string // as added, numbered from $1
	nargs  []int    // each write's count of arguments
	args   []any
}

// Add appends a write whose placeholders are numbered $1 to $len(args),
// as if it ran alone; they are renumbered after the writes before it. q
// must hold no '$' followed by a digit but in its placeholders (no
// dollar-quoted strings).
func (b *Batch) Add(q string, args ...any) {
	b.writes = append(b.writes, q)
	b.nargs = append(b.nargs, len(args))
	b.args = append(b.args, args...)
}

// Len is the number of writes added and not yet run.
func (b *Batch) Len() int { return len(b.writes) }

// Statement is the batch as one PostgreSQL statement and its arguments.
func (b *Batch) Statement() (string, []any) {
	if len(b.writes) == 1 {
		return b.writes[0], b.args
	}
	var s strings.Builder
	s.WriteString("WITH ")
	off := 0
	for i, q := range b.writes {
		if off > 0 {
			q = ShiftPlaceholders(q, off)
		}
		off += b.nargs[i]
		if i == len(b.writes)-1 {
			s.WriteByte(' ')
			s.WriteString(q)
			break
		}
		if i > 0 {
			s.WriteString(", ")
		}
		s.WriteByte('w')
		s.WriteString(strconv.Itoa(i))
		s.WriteString(" AS (")
		s.WriteString(q)
		s.WriteByte(')')
	}
	return s.String(), b.args
}

// AppendTo appends the batch's writes to writes, their placeholders
// numbered after args, and their arguments to args: for a statement that
// numbers its writes' placeholders itself.
func (b *Batch) AppendTo(writes []string, args []any) ([]string, []any) {
	off := 0
	for i, q := range b.writes {
		writes = append(writes, ShiftPlaceholders(q, len(args)))
		args = append(args, b.args[off:off+b.nargs[i]]...)
		off += b.nargs[i]
	}
	return writes, args
}

// Exec runs the batch's writes in tx (see Batch) and empties it.
func (b *Batch) Exec(ctx context.Context, d Dialect, tx *sql.Tx) error {
	_, err := b.ExecResult(ctx, d, tx)
	return err
}

// ExecResult is Exec, returning the result of the last write (the rows
// it affected); nil for an empty batch.
func (b *Batch) ExecResult(ctx context.Context, d Dialect, tx *sql.Tx) (sql.Result, error) {
	if len(b.writes) == 0 {
		return nil, nil
	}
	defer b.reset()
	if d == Postgres {
		q, args := b.Statement()
		return tx.ExecContext(ctx, q, args...)
	}
	off := 0
	var res sql.Result
	for i, q := range b.writes {
		n := b.nargs[i]
		var err error
		if res, err = tx.ExecContext(ctx, q, b.args[off:off+n]...); err != nil {
			return nil, fmt.Errorf("write %d of %d: %w", i+1, len(b.writes), err)
		}
		off += n
	}
	return res, nil
}

func (b *Batch) reset() {
	b.writes = b.writes[:0]
	b.nargs = b.nargs[:0]
	clear(b.args)
	b.args = b.args[:0]
}

// ShiftPlaceholders adds by to every placeholder number ($N) of q, which
// must hold no other '$' followed by a digit: a query numbered from $1
// placed after by arguments of a statement.
func ShiftPlaceholders(q string, by int) string {
	return forPlaceholders(q, func(n int) int { return n + by })
}

// forPlaceholders rewrites every $N of q as $f(N).
func forPlaceholders(q string, f func(int) int) string {
	var out strings.Builder
	out.Grow(len(q) + 16)
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c != '$' || i+1 == len(q) || q[i+1] < '0' || q[i+1] > '9' {
			out.WriteByte(c)
			continue
		}
		j := i + 1
		for j < len(q) && q[j] >= '0' && q[j] <= '9' {
			j++
		}
		n, _ := strconv.Atoi(q[i+1 : j])
		out.WriteByte('$')
		out.WriteString(strconv.Itoa(f(n)))
		i = j - 1
	}
	return out.String()
}
