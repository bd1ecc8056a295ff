package incident

import "testing"

// TestIngestStages: ingestion runs the stages docs/storage.md names, in
// that order.
func TestIngestStages(t *testing.T) {
	want := []string{"load", "classify", "place", "resolve", "persist", "settle"}
	if len(ingestStages) != len(want) {
		t.Fatalf("%d stages, want %d", len(ingestStages), len(want))
	}
	for i, st := range ingestStages {
		if st.name != want[i] || st.exec == nil {
			t.Errorf("stage %d is %q (exec set: %v), want %q", i, st.name, st.exec != nil, want[i])
		}
	}
}
