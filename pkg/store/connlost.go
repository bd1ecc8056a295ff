package store

import (
	"database/sql/driver"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// ConnectionLost reports whether err says that the connection to the
// database broke under a transaction: the server ended the session (a
// restart, pg_terminate_backend) or the network failed; or that no
// connection could be made for it (the server is shutting down, starting
// up or unreachable: the rest of a restart). The transaction did not
// commit, or (lost at COMMIT) its outcome is unknown; the same write on
// another connection, once the server is back, may succeed.
func ConnectionLost(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, driver.ErrBadConn) {
		return true
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 08: connection exception; 57P01-57P03: the server is
		// shutting down or was told to end the session.
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	return pgconn.SafeToRetry(err)
}
