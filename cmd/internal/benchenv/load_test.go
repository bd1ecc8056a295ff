package benchenv

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rootuip/sre/pkg/receiver"
)

func TestQuantile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	ten := ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	for _, c := range []struct {
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{nil, 0.99, 0},
		{ms(7), 0, 7 * time.Millisecond},
		{ms(7), 0.5, 7 * time.Millisecond},
		{ms(7), 1, 7 * time.Millisecond},
		{ten, 0, 1 * time.Millisecond},   // rank 0 is taken as 1
		{ten, 0.5, 5 * time.Millisecond}, // rank 5 of 10: the lower middle
		{ten, 0.91, 9 * time.Millisecond},
		{ten, 0.95, 10 * time.Millisecond}, // rank 9.5 rounds up
		{ten, 0.99, 10 * time.Millisecond},
		{ten, 1, 10 * time.Millisecond},
		{ms(1, 2, 3), 0.5, 2 * time.Millisecond},
	} {
		t.Run(fmt.Sprintf("%d@%g", len(c.sorted), c.q), func(t *testing.T) {
			if got := Quantile(c.sorted, c.q); got != c.want {
				t.Fatalf("Quantile(%v, %g) = %v, want %v", c.sorted, c.q, got, c.want)
			}
		})
	}
}

// TestPayloadAndPost: a delivery decodes as Alertmanager's webhook body
// with n alerts of one new group that sred's own check (Message.Validate)
// accepts, the runbook_url only when given; Post
// sends it as JSON and turns an answer other than 2xx into an error.
func TestPayloadAndPost(t *testing.T) {
	var got []receiver.Message
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b receiver.Message
		if r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "not JSON", http.StatusUnsupportedMediaType)
			return
		}
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if len(b.Alerts) == 0 {
			http.Error(w, "no alerts", http.StatusBadRequest)
			return
		}
		if err := b.Validate(); err != nil { // sred's own check
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got = append(got, b)
	}))
	defer srv.Close()
	if err := Post(srv.Client(), srv.URL, Payload("run", 5, 3, "")); err != nil {
		t.Fatal(err)
	}
	if err := Post(srv.Client(), srv.URL, Payload("run", 6, 1, "https://runbooks.example.com/x")); err != nil {
		t.Fatal(err)
	}
	err := Post(srv.Client(), srv.URL, Payload("run", 7, 0, ""))
	if err == nil || err.Error() != "HTTP 400: no alerts" {
		t.Fatalf("Post of a refused body: %v, want HTTP 400: no alerts", err)
	}
	if len(got) != 2 {
		t.Fatalf("%d deliveries, want 2", len(got))
	}
	a, b := got[0], got[1]
	if a.Status != "firing" || len(a.Alerts) != 3 || a.CommonLabels["group"] != "run-5" || a.CommonLabels["service"] != "checkout" ||
		!strings.Contains(a.GroupKey, `group="run-5"`) {
		t.Fatalf("delivery 5: %+v", a)
	}
	if a.Alerts[2].Fingerprint != "0000000000050002" || a.Alerts[2].Labels["instance"] != "10.0.0.2:8080" {
		t.Fatalf("delivery 5's third alert: %+v", a.Alerts[2])
	}
	if _, ok := a.Alerts[0].Annotations["runbook_url"]; ok {
		t.Fatalf("runbook_url without one given: %+v", a.Alerts[0].Annotations)
	}
	if b.CommonLabels["service"] != "payments" || b.Alerts[0].Annotations["runbook_url"] != "https://runbooks.example.com/x" {
		t.Fatalf("delivery 6: %+v", b)
	}
}
