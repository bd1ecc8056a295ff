package store

import (
	"database/sql"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
)

// Failed reports whether err is an error of the database itself: one
// SQLite or PostgreSQL returned (a constraint, a full disk, a locked or
// unreadable file, a trigger's exception), a connection that failed or
// was lost, a transaction or connection already done. Its text may name
// the database's host, its file's path or SQL: an answer to a client says
// that the store failed, and the error goes to the log.
func Failed(err error) bool {
	if err == nil {
		return false
	}
	var se *sqlite.Error
	var pe *pgconn.PgError
	var ce *pgconn.ConnectError
	switch {
	case errors.As(err, &se), errors.As(err, &pe), errors.As(err, &ce):
		return true
	case errors.Is(err, sql.ErrConnDone), errors.Is(err, sql.ErrTxDone):
		return true
	}
	return ConnectionLost(err)
}
