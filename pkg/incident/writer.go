package incident

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rootuip/sre/pkg/store"
)

// ErrClosed is returned by writes asked of a Service after Close.
var ErrClosed = errors.New("incident service closed")

// maxBatch bounds how many writes share one SQLite transaction.
const maxBatch = 64

// batchLimit bounds the time of one SQLite writer transaction: a batch
// still running after it stops before its next write, rolled back, and
// every write of it fails (see applyBatch).
const batchLimit = 30 * time.Second

// writeOp is one write waiting for the SQLite writer: a webhook delivery, a
// timeline entry, or any other Write.
type writeOp struct {
	ctx   context.Context
	apply func(ctx context.Context, tx *sql.Tx) error
	err   error
	done  chan struct{}
}

// writerKey marks the context of writes run by the writer, so that a write
// asked from inside one fails instead of waiting for itself.
type writerKey struct{}

// writerConn is the connection of the writer's transaction tx when ctx is
// the context of a write the writer runs in it (store.TxQueries, which
// says why); nil otherwise.
func writerConn(ctx context.Context, tx *sql.Tx) *sql.Conn {
	c, _ := store.TxQueries(ctx, tx).(*sql.Conn)
	return c
}

// workers are the Service's goroutines: the SQLite writer (group commit)
// and the statement preparer. They start with the Service (NewService) and
// stop at Close; nothing is started lazily or left running.
type workers struct {
	mu     sync.Mutex
	queue  []*writeOp
	closed bool
	wake   chan struct{} // a write was queued (capacity 1)

	prep chan string // statements to prepare outside any transaction

	batches int64 // transactions begun by the writer (its goroutine only)

	now func() time.Time // tells the batch's time against batchLimit

	// conn is the writer's own connection, kept from batch to batch (its
	// goroutine only; see writerTx).
	conn *sql.Conn

	// checkpoint wakes the checkpointer with the writer's commit count
	// (capacity 1; see runCheckpointer); commits counts the writer's
	// commits on conn and asked the count at the last wake-up (its
	// goroutine only); every is how many commits apart it wakes the
	// checkpointer (set by the checkpointer).
	checkpoint     chan int64
	commits, asked int64
	every          atomic.Int64
	checkpoints    atomic.Int64 // checkpoints run by the checkpointer (tests)

	stop    context.CancelFunc // ends the workers' context
	stopped chan struct{}      // closed by Close
	wg      sync.WaitGroup
	once    sync.Once
}

func (s *Service) startWorkers() {
	ctx, cancel := context.WithCancel(context.Background())
	s.w = &workers{wake: make(chan struct{}, 1), prep: make(chan string, 64), checkpoint: make(chan int64, 1),
		now: time.Now, stop: cancel, stopped: make(chan struct{})}
	s.w.wg.Add(1)
	go func() {
		defer s.w.wg.Done()
		s.runPreparer(ctx)
	}()
	if s.db.Dialect == store.SQLite {
		s.w.wg.Add(1)
		go func() {
			defer s.w.wg.Done()
			s.runWriter()
		}()
		s.w.every.Store(checkpointFirst)
		s.w.wg.Add(1)
		go func() {
			defer s.w.wg.Done()
			s.runCheckpointer(ctx)
		}()
	}
}

// Close stops the service's goroutines: the writer applies the writes
// already queued (each still answered after its commit), then it and the
// statement preparer return. Writes asked after Close fail with ErrClosed.
// Close does not close the store; call it before closing the store.
func (s *Service) Close() error {
	s.w.once.Do(func() {
		s.w.mu.Lock()
		s.w.closed = true
		s.w.mu.Unlock()
		close(s.w.stopped)
		s.w.stop()
		s.w.wg.Wait()
		s.stmts.Range(func(k, v any) bool {
			v.(*sql.Stmt).Close()
			s.stmts.Delete(k)
			return true
		})
	})
	return nil
}

func (s *Service) closed() bool {
	select {
	case <-s.w.stopped:
		return true
	default:
		return false
	}
}

// Write runs fn in a transaction and returns once it is committed. On
// SQLite, which has one writer at a time and pays one fsync per commit, fn
// joins the writes of other goroutines (webhook deliveries above all) in
// one transaction (group commit), in its own savepoint: if fn fails, only
// its own changes are rolled back. On PostgreSQL fn has its own transaction.
// fn must not ask for another Write.
func (s *Service) Write(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return s.write(ctx, fn, false)
}

// write is Write; with untilDone, on SQLite it waits for the writer's
// outcome even after ctx ended. The writer applies a queued write whether
// or not its caller still waits (its context is cut from the caller's), so
// a webhook delivery whose caller gave up (Alertmanager's timeout) may
// commit: waiting tells the delivery's truth, so that what it stored is
// counted and published once (and its caller, gone, is answered as
// applied), not counted as an error while its incident opens unseen by the
// metrics and the event stream. The wait is bounded by the batch's limit.
func (s *Service) write(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error, untilDone bool) error {
	if s.closed() {
		return ErrClosed
	}
	if s.db.Dialect != store.SQLite {
		return s.db.InTx(ctx, func(tx *sql.Tx) error {
			if h := s.writeHook; h != nil {
				h(ctx, 0)
			}
			return fn(ctx, tx)
		})
	}
	if ctx.Value(writerKey{}) != nil {
		return errors.New("incident: Write asked from inside a Write (it would wait for itself)")
	}
	op := &writeOp{ctx: ctx, apply: fn, done: make(chan struct{})}
	s.w.mu.Lock()
	if s.w.closed {
		s.w.mu.Unlock()
		return ErrClosed
	}
	s.w.queue = append(s.w.queue, op)
	s.w.mu.Unlock()
	select {
	case s.w.wake <- struct{}{}:
	default: // the writer is already woken
	}
	if untilDone {
		<-op.done
		return op.err
	}
	select {
	case <-op.done:
		return op.err
	case <-ctx.Done():
		// The write may still commit; a retried webhook delivery is then a
		// duplicate.
		return ctx.Err()
	}
}

// runWriter applies queued writes, up to maxBatch per transaction, until
// Close; then it applies what is still queued and returns.
func (s *Service) runWriter() {
	defer func() {
		if s.w.conn != nil {
			s.w.conn.Close()
		}
	}()
	for {
		select {
		case <-s.w.wake:
		case <-s.w.stopped:
		}
		for {
			s.w.mu.Lock()
			batch := s.w.queue[:min(len(s.w.queue), maxBatch)]
			s.w.queue = s.w.queue[len(batch):]
			if len(s.w.queue) == 0 {
				s.w.queue = nil
			}
			closed := s.w.closed
			s.w.mu.Unlock()
			if len(batch) == 0 {
				if closed {
					return
				}
				break
			}
			s.applyBatch(batch)
		}
	}
}

// applyBatch applies a batch in one transaction, each write in its own
// savepoint, and answers every write after the commit.
func (s *Service) applyBatch(batch []*writeOp) {
	defer func() {
		for _, op := range batch {
			close(op.done)
		}
	}()
	fail := func(err error) {
		for _, op := range batch {
			if op.err == nil {
				op.err = err
			}
		}
	}
	// The batch's statements run with contexts that cannot end: for a
	// statement whose context can, modernc's SQLite starts a goroutine to
	// watch it (interruptOnDone), and database/sql one for the rows of a
	// query whose context or transaction's context can (Rows.awaitDone,
	// see writerConn), each created and scheduled by the writer's
	// goroutine, whose time bounds ingestion. The writes' own contexts are cut from their callers' (a
	// delivery whose caller gave up is still applied or not as one); the
	// batch's limit is checked between its writes, and the transaction
	// ends only by the writer's hand (see writerConn). A BEGIN waits for
	// another connection's write at most busy_timeout.
	start := s.w.now()
	defer func() { s.m.writerBusy.Add(s.w.now().Sub(start).Seconds()) }()
	s.m.writerBatch.Observe(float64(len(batch)))
	deadline := start.Add(batchLimit)
	ctx := context.Background()
	tx, err := s.writerTx(ctx)
	if err != nil {
		fail(fmt.Errorf("begin transaction: %w", err))
		return
	}
	s.w.batches++
	for _, op := range batch {
		if s.w.now().After(deadline) {
			tx.Rollback() //nolint:errcheck
			fail(fmt.Errorf("batch over %s: %w", batchLimit, context.DeadlineExceeded))
			return
		}
		if _, err := s.exec(ctx, tx, `SAVEPOINT delivery`); err != nil {
			tx.Rollback() //nolint:errcheck
			fail(fmt.Errorf("savepoint: %w", err))
			return
		}
		octx := context.WithValue(context.WithoutCancel(op.ctx), writerKey{}, true)
		if s.w.conn != nil { // not the pool's only connection (an in-memory database)
			// The hooks' queries (escalation, jobs, changes) run on the
			// writer's connection too (store.TxQueries).
			octx = store.WithTxConn(octx, tx, s.w.conn)
		}
		if h := s.writeHook; h != nil {
			h(octx, s.w.batches)
		}
		if op.err = op.apply(octx, tx); op.err != nil {
			if _, err := s.exec(ctx, tx, `ROLLBACK TO SAVEPOINT delivery`); err != nil {
				tx.Rollback() //nolint:errcheck
				fail(fmt.Errorf("rollback to savepoint: %w", err))
				return
			}
		}
		if _, err := s.exec(ctx, tx, `RELEASE SAVEPOINT delivery`); err != nil {
			tx.Rollback() //nolint:errcheck
			fail(fmt.Errorf("release savepoint: %w", err))
			return
		}
	}
	commitStart := s.w.now()
	err = tx.Commit()
	s.m.writerCommit.Observe(s.w.now().Sub(commitStart).Seconds())
	if err != nil {
		// Every write of the batch is lost, including those that had
		// succeeded: none may be answered as stored.
		for _, op := range batch {
			op.err = fmt.Errorf("commit: %w", err)
		}
		return
	}
	if s.w.conn != nil {
		if s.w.commits++; s.w.commits-s.w.asked >= s.w.every.Load() {
			select {
			case s.w.checkpoint <- s.w.commits:
				s.w.asked = s.w.commits
			default: // one is under way
			}
		}
	}
}

// The checkpointer is woken every so many of the writer's commits:
// checkpointFirst at first, then as many as wrote about checkpointFrames
// WAL frames (SQLite's automatic checkpoint's threshold) at the rate of
// frames per commit the last checkpoint found (10 to 100 and more, small
// batches to large ones), at most checkpointMax. A checkpoint at every
// few frames would copy the pages every commit writes (the tables' last
// pages) to the database again and again.
const (
	checkpointFirst  = 16
	checkpointFrames = 1000
	checkpointMax    = 256
)

// restartFrames is the WAL length at which the writer's own commit
// checkpoints after all (SQLite's automatic checkpoint, set on its
// connection in writerTx), so that the WAL starts again from its
// beginning. SQLite starts it again only at a write that begins with
// every frame copied and no reader in the WAL; the checkpointer's copies
// finish while the writer has its next batch's transaction open (under
// load it always has one), so with the writer never checkpointing the WAL
// only grew: 170 MB in a 10 s run at 32 connections, against 5 MB with
// SQLite's own checkpoints, and every read looks a page up in the WAL's
// index first. By the time the writer's commit crosses restartFrames the
// checkpointer has copied most of them: the writer copies what came since
// and syncs, once per restartFrames instead of a whole copy every 1,000.
const restartFrames = 4096

// runCheckpointer copies the WAL's frames into the database (a PASSIVE
// checkpoint: it never waits for, nor blocks, the writer) when the writer
// asks, until ctx ends. SQLite's automatic checkpoint runs inside the
// commit that crosses 1,000 WAL frames, in the writer's goroutine, with
// its fsync of the database file, while every queued delivery waits (4-5%
// of sred's CPU under webhook load, all of it on the one goroutine whose
// time bounds throughput); the writer's connection has it off (writerTx).
// The WAL's own fsync at every commit, what makes a delivery durable, is
// unchanged.
func (s *Service) runCheckpointer(ctx context.Context) {
	// The writer's commit count and the WAL's frames at the last
	// checkpoint.
	var last, lastLog int64
	for {
		select {
		case <-ctx.Done():
			return
		case commits := <-s.w.checkpoint:
			cctx, cancel := context.WithTimeout(ctx, time.Minute)
			// log: the WAL's frames, written since the WAL last started
			// over. After a checkpoint that copied every frame the next
			// write starts it from the beginning, unless a reader still
			// reads it: then it grows on.
			var busy, log, done int64
			err := s.db.QueryRowContext(cctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &done)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					s.logger.Warn("WAL checkpoint failed", "err", err)
				}
			} else {
				frames := log
				if log >= lastLog {
					frames = log - lastLog // perhaps not started over
				}
				if n := commits - last; n > 0 && frames > 0 {
					s.w.every.Store(checkpointEvery(frames, n))
				}
				lastLog = log
			}
			last = commits
			s.w.checkpoints.Add(1)
		}
	}
}

// checkpointEvery is how many commits write about checkpointFrames WAL
// frames when n commits wrote frames of them.
func checkpointEvery(frames, n int64) int64 {
	return min(max(checkpointFrames*n/frames, 1), checkpointMax)
}

// writerTx begins the writer's transaction on the writer's own connection
// when the pool has others for everyone else (not with the one connection of
// an in-memory database). SQLite drops a connection's page cache whenever
// it sees a write of another connection: a writer taking any connection of
// the pool read back, at every batch, the pages the previous batch had
// written on another one (pread, about 3% of sred's CPU under webhook load),
// and prepared its statements on every connection.
func (s *Service) writerTx(ctx context.Context) (*sql.Tx, error) {
	if s.w.conn == nil {
		if s.db.Stats().MaxOpenConnections == 1 {
			return s.db.BeginTx(ctx, nil)
		}
		c, err := s.db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		// Its commits leave the WAL's copying to the checkpointer
		// (runCheckpointer) but for restartFrames (see there). The
		// setting is the connection's own.
		if _, err := c.ExecContext(ctx, fmt.Sprintf(`PRAGMA wal_autocheckpoint = %d`, restartFrames)); err != nil {
			c.Close()
			return nil, err
		}
		s.w.conn = c
	}
	tx, err := s.w.conn.BeginTx(ctx, nil)
	if err != nil {
		// Perhaps a broken connection: the next batch takes one afresh.
		s.w.conn.Close()
		s.w.conn = nil
	}
	return tx, err
}

// runPreparer prepares, outside any transaction, the statements first run
// inside one (see prepared), until Close.
func (s *Service) runPreparer(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case q := <-s.w.prep:
			pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			s.prepare(pctx, q)
			cancel()
			s.preparing.Delete(q)
		}
	}
}
