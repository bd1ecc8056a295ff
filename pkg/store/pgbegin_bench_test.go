package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// BenchmarkPostgresTx: a transaction of a query, a write and COMMIT, the
// shape of a delivery's, through pgx's database/sql connections as they
// are (BEGIN, the query, the write and COMMIT each a round trip) and
// through sred's (BEGIN with the query, the write with COMMIT, marked
// store.AtCommit: two). Besides the time per transaction it reports this
// process's CPU per transaction (cpu-us/op): sred's side of the trade,
// fewer round trips for pgx's batch's allocations.
func BenchmarkPostgresTx(b *testing.B) {
	url := testutil.PostgresSchemaURL(b)
	cfg, err := pgx.ParseConfig(url)
	require.NoError(b, err)
	pipelined, err := store.OpenPostgres(context.Background(), url, store.PostgresOptions{})
	require.NoError(b, err)
	defer pipelined.Close()
	plain := stdlib.OpenDB(*cfg)
	defer plain.Close()
	require.NoError(b, pipelined.Migrate(context.Background(), beginSet))
	for _, bc := range []struct {
		name string
		db   *sql.DB
	}{{"one-by-one", plain}, {"pipelined", pipelined.DB}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			bc.db.SetMaxOpenConns(1)
			write := store.AtCommit(ctx)
			b.ReportAllocs()
			cpu0 := testutil.ProcessCPU()
			b.ResetTimer()
			for i := range b.N {
				tx, err := bc.db.BeginTx(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				// fail ends the transaction first: the schema's drop at the
				// end would wait for it.
				fail := func(err error) {
					_ = tx.Rollback()
					b.Fatal(err)
				}
				var at int64
				if err := tx.QueryRowContext(ctx, `SELECT $1::bigint + 1`, int64(i)).Scan(&at); err != nil {
					fail(err)
				}
				if _, err := tx.ExecContext(write, `INSERT INTO things (id, at) VALUES ($1, $2)`, fmt.Sprint("tx-", txSeq.Add(1)), at); err != nil {
					fail(err)
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(testutil.ProcessCPU()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-us/op")
		})
	}
}

var txSeq atomic.Int64
