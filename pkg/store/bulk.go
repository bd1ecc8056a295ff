package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// Execer runs statements: a *sql.DB, *sql.Tx or *sql.Conn.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// maxBulkParams bounds the parameters of one statement; both backends take
// more (SQLite 32766, PostgreSQL 65535).
const maxBulkParams = 30000

// InsertRows inserts rows (each with one value per column) into table with
// multi-row INSERT statements of up to maxBulkParams parameters, each
// followed by suffix (an ON CONFLICT clause without parameters, or ""). It
// is the bulk path of imports: a few statements instead of one per row. On
// SQLite the parameters are anonymous (?): SQLite looks numbered ones ($n)
// up by name, which is quadratic in their number.
func InsertRows(ctx context.Context, q Execer, d Dialect, table string, cols []string, rows [][]any, suffix string) error {
	if len(rows) == 0 {
		return nil
	}
	per := max(1, maxBulkParams/len(cols))
	head := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES "
	for start := 0; start < len(rows); start += per {
		chunk := rows[start:min(len(rows), start+per)]
		var sb strings.Builder
		sb.Grow(len(head) + len(chunk)*len(cols)*6 + len(suffix) + 1)
		sb.WriteString(head)
		args := make([]any, 0, len(chunk)*len(cols))
		for i, r := range chunk {
			if len(r) != len(cols) {
				return fmt.Errorf("insert into %s: row has %d values for %d columns", table, len(r), len(cols))
			}
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteByte('(')
			for j := range r {
				if j > 0 {
					sb.WriteString(", ")
				}
				if d == SQLite {
					sb.WriteByte('?')
				} else {
					sb.WriteByte('$')
					sb.WriteString(strconv.Itoa(len(args) + j + 1))
				}
			}
			sb.WriteByte(')')
			args = append(args, r...)
		}
		if suffix != "" {
			sb.WriteByte(' ')
			sb.WriteString(suffix)
		}
		if _, err := q.ExecContext(ctx, sb.String(), args...); err != nil {
			return fmt.Errorf("insert into %s: %w", table, err)
		}
	}
	return nil
}

// Placeholders returns "$from, $from+1, ..." for n parameters, for IN lists.
func Placeholders(from, n int) string {
	var sb strings.Builder
	for i := range n {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteByte('$')
		sb.WriteString(strconv.Itoa(from + i))
	}
	return sb.String()
}

// Args converts strings to statement arguments.
func Args(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
