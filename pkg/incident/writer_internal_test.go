package incident

import "testing"

// TestCheckpointEvery: the checkpointer is asked for every so many commits
// as write about checkpointFrames WAL frames at the last rate seen, at least
// one and at most checkpointMax.
func TestCheckpointEvery(t *testing.T) {
	for _, c := range []struct{ frames, commits, want int64 }{
		{1000, 16, 16},  // 62.5 frames a commit
		{160, 16, 100},  // 10 a commit: small batches
		{3200, 32, 10},  // 100 a commit: large batches
		{100000, 16, 1}, // a commit over 1,000 frames: every commit
		{1, 16, checkpointMax},
	} {
		if got := checkpointEvery(c.frames, c.commits); got != c.want {
			t.Errorf("checkpointEvery(%d frames, %d commits) = %d, want %d", c.frames, c.commits, got, c.want)
		}
	}
}
