package receiver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/secretfile"
)

// FuzzDecodeRequest feeds arbitrary bodies to the webhook decoder: it must
// refuse or accept, never panic, and what it accepts must be storable and
// answerable: JSON can encode it again (no time outside the years 1 to
// 9999, no NaN), it has no NUL byte, and after Limit every value is within
// the limits. Seeds: the payloads recorded from Alertmanager and edge cases.
func FuzzDecodeRequest(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, starts := range []string{"9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+01:00", "2026-11-27T03:34:23Z"} {
		b, _ := json.Marshal(map[string]any{"version": "4", "groupKey": "g", "status": "firing", "receiver": "r",
			"alerts": []json.RawMessage{json.RawMessage(`{"status":"firing","labels":{"alertname":"A"},"startsAt":"` + starts + `","fingerprint":"f"}`)}})
		f.Add(b)
	}
	f.Add([]byte(`{"version":"4","groupKey":"g\u0000","status":"firing","receiver":"r","alerts":[]}`))
	f.Add([]byte(`{"version":"4","alerts":[{"labels":{"a":"` + string(bytes.Repeat([]byte("x"), 5000)) + `"}}]}`))
	lim := limits.Webhook{MaxLabelNameBytes: 64, MaxLabelValueBytes: 64, MaxLabelsPerAlert: 8, MaxAnnotationValueBytes: 64, MaxAlertsPerGroup: 4}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
		msg, rerr := DecodeRequest(httptest.NewRecorder(), r, secretfile.Source{}, 1<<20)
		if rerr != nil {
			if rerr.Code < 400 || rerr.Code > 499 {
				t.Fatalf("refused with %d: %v", rerr.Code, rerr)
			}
			return
		}
		if err := limits.Check(msg); err != nil {
			t.Fatalf("accepted a value the store cannot keep: %v", err)
		}
		if _, err := json.Marshal(msg); err != nil {
			t.Fatalf("accepted a delivery JSON cannot encode again: %v", err)
		}
		if _, err := msg.Limit(lim); err != nil {
			return
		}
		if len(msg.Alerts) > lim.MaxAlertsPerGroup {
			t.Fatalf("%d alerts after Limit", len(msg.Alerts))
		}
		if len(msg.GroupKey) > limits.MaxGroupKeyBytes {
			t.Fatalf("group key of %d bytes after Limit", len(msg.GroupKey))
		}
		for _, a := range msg.Alerts {
			for k, v := range a.Labels {
				if len(k) > lim.MaxLabelNameBytes || len(v) > lim.MaxLabelValueBytes {
					t.Fatalf("label %q=%q over the limits after Limit", k, v)
				}
			}
			for _, v := range a.Annotations {
				if len(v) > lim.MaxAnnotationValueBytes {
					t.Fatalf("annotation of %d bytes after Limit", len(v))
				}
			}
		}
		if err := limits.Check(msg); err != nil {
			t.Fatalf("Limit made a value the store cannot keep: %v", err)
		}
		_ = msg.Notification()
	})
}
