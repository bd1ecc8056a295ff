package scaling

import (
	"os"
	"testing"
	"time"
)

// FuzzParse: no input makes the loader panic, and a policy it accepts is
// bounded (0 <= min <= initial <= max), has its thresholds in order and
// steps and windows that are not negative; Decide on it stays within its
// bounds (go test -fuzz FuzzParse ./pkg/scaling).
func FuzzParse(f *testing.F) {
	for _, p := range []string{"../../examples/scaling/api.yml", "../../examples/scaling/ml-pipeline.yml", "testdata/policy-queue.yml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b, 50.0, 3)
		}
	}
	f.Add([]byte(thresholdPolicy), 95.0, 2)
	f.Add([]byte(targetPolicy), 20.0, 9)
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte, v float64, cur int) {
		p, err := Parse(data, "fuzz.yml")
		if err != nil {
			return
		}
		if p.MinInstances < 0 || p.MinInstances > p.MaxInstances || p.InitialInstances < p.MinInstances || p.InitialInstances > p.MaxInstances {
			t.Fatalf("accepted bounds %d <= %d <= %d", p.MinInstances, p.InitialInstances, p.MaxInstances)
		}
		if u, d := p.ScaleUp.Threshold, p.ScaleDown.Threshold; u != nil && d != nil && *d >= *u {
			t.Fatalf("accepted thresholds down %g >= up %g", *d, *u)
		}
		if p.ScaleUp.Step < 0 || p.ScaleDown.Step < 0 || p.ScaleUp.Cooldown < 0 || p.ScaleDown.Stabilization < 0 || p.Interval <= 0 {
			t.Fatalf("accepted negative steps or windows: %+v", p)
		}
		if cur < 0 || cur > 1000 {
			return
		}
		var samples []Sample
		for i := time.Duration(0); i <= p.Window(); i += time.Duration(p.Interval) {
			samples = append([]Sample{{Time: now.Add(-i), Value: v}}, samples...)
			if len(samples) > 1000 {
				return
			}
		}
		d := Decide(p, State{Instances: cur}, samples, now)
		if d.Acts() && (d.To < p.MinInstances || d.To > p.MaxInstances) {
			t.Fatalf("decided %d outside [%d, %d]: %s", d.To, p.MinInstances, p.MaxInstances, d.Reason)
		}
		if d.Reason == "" {
			t.Fatal("a decision without a reason")
		}
	})
}
