package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDrive: the Go client sends --max-requests distinct deliveries
// (prefix-1 ... prefix-N, each once, of --alerts alerts) over its
// connections and counts the 2xx answers and the others; the latencies
// are the 2xx answers', sorted. The steps end on the request count, not
// on a time (the duration is far longer than they take).
func TestDrive(t *testing.T) {
	const prefix = "t-sqlite-sred-4.1"
	tests := []struct {
		name string
		o    options
	}{
		{name: "closed loop, warm", o: options{maxRequests: 50, alerts: 3, warm: true}},
		{name: "closed loop, cold", o: options{maxRequests: 50, alerts: 3}},
		// Every delivery is due at once: the open loop with nothing to
		// wait for.
		{name: "open loop", o: options{maxRequests: 50, alerts: 2, warm: true, rate: 1e9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			seen := map[string]int{}
			var bad []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var m struct {
					GroupLabels map[string]string `json:"groupLabels"`
					Alerts      []json.RawMessage `json:"alerts"`
				}
				body, _ := io.ReadAll(r.Body)
				if err := json.Unmarshal(body, &m); err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				g := m.GroupLabels["group"]
				i, err := strconv.Atoi(strings.TrimPrefix(g, prefix+"-"))
				mu.Lock()
				seen[g]++
				if err != nil || len(m.Alerts) != tt.o.alerts {
					bad = append(bad, g)
				}
				mu.Unlock()
				if i%5 == 0 {
					http.Error(w, "refused", http.StatusInternalServerError)
					return
				}
				_, _ = io.WriteString(w, "{}")
			}))
			defer srv.Close()
			o := tt.o
			o.duration = 10 * time.Minute
			r := drive(srv.URL+"/api/v1/webhook/alertmanager", 4, o, prefix)
			require.Equal(t, 40, r.ok)
			require.Equal(t, 10, r.errs)
			require.Len(t, r.latencies, 40)
			require.True(t, slices.IsSorted(r.latencies))
			require.Positive(t, r.latencies[0])
			require.ErrorContains(t, r.firstErr, "HTTP 500: refused")
			require.Positive(t, r.elapsed)
			mu.Lock()
			defer mu.Unlock()
			require.Empty(t, bad)
			require.Len(t, seen, 50)
			for i := 1; i <= 50; i++ {
				require.Equal(t, 1, seen[prefix+"-"+strconv.Itoa(i)], "delivery %d", i)
			}
		})
	}
}
