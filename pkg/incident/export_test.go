package incident

import (
	"context"
	"time"
)

// SetWriteHook makes h run at the start of every Write's function, inside
// its transaction: on SQLite in the writer goroutine with the number of
// the writer's transaction, on PostgreSQL with 0. Set it before the
// Service's first write.
func SetWriteHook(s *Service, h func(ctx context.Context, batch int64)) { s.writeHook = h }

// SetWriterNow sets what tells the SQLite writer's batches their time
// against BatchLimit; call it before the first write.
func SetWriterNow(s *Service, now func() time.Time) { s.w.now = now }

// BatchLimit bounds the time of one SQLite writer transaction.
const BatchLimit = batchLimit

// QueuedWrites is the number of writes waiting for the SQLite writer.
func QueuedWrites(s *Service) int {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	return len(s.w.queue)
}

// MaxAlertsPerWrite is how many episodes one write of a notification applies.
func MaxAlertsPerWrite() int { return maxAlertsPerWrite }

// SetMaxAlertsPerWrite changes it until the test ends.
func SetMaxAlertsPerWrite(t interface{ Cleanup(func()) }, n int) {
	old := maxAlertsPerWrite
	maxAlertsPerWrite = n
	t.Cleanup(func() { maxAlertsPerWrite = old })
}

// EpisodeReads is how many duplicate checks read a group's stored episodes.
func EpisodeReads(s *Service) int64 { return s.episodeReads.Load() }

// CheckpointFirst is how many of the writer's commits ask for its first
// WAL checkpoint.
const CheckpointFirst = checkpointFirst

// CheckpointEvery is how many commits apart the writer asks for a
// checkpoint now.
func CheckpointEvery(s *Service) int64 { return s.w.every.Load() }

// RestartFrames is the WAL length at which the writer checkpoints itself.
const RestartFrames = restartFrames

// Checkpoints is how many WAL checkpoints the checkpointer ran.
func Checkpoints(s *Service) int64 { return s.w.checkpoints.Load() }
