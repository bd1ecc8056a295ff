package benchenv

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rootuip/sre/pkg/receiver"
	"github.com/rootuip/sre/pkg/secretfile"
)

var startsAtRE = regexp.MustCompile(`"startsAt":"[0-9T:-]+Z"`)

// TestWrkScript runs WrkScript through wrk (make test installs it when it
// is missing, as .ci/run does) against a server that decodes every body
// with sred's own decoder (receiver.DecodeRequest) and compares it, byte
// for byte but for startsAt, with Payload's body of the same delivery
// number: the wrk load is the Go driver's. Every group key is new, the
// startsAt a minute before the request, and the counts wrk reports agree
// with what the server answered (one in five deliveries is refused with
// 400 to check the non-2xx count). wrk is stopped by SIGINT once the
// server has seen enough deliveries, not after a time.
func TestWrkScript(t *testing.T) {
	bin, err := exec.LookPath("wrk")
	if err != nil {
		t.Fatalf("wrk is not installed (make test and .ci/run install it with apt-get): %v", err)
	}
	const (
		prefix = "t1a2-sqlite-sred-8"
		alerts = 10
		want   = 300
		rb     = "https://runbooks.example.com/high-error-rate"
	)
	var (
		mu       sync.Mutex
		seen     = map[string]bool{}
		ok, bad  int
		failures []string
	)
	earliest := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	stop := make(chan struct{})
	var once sync.Once
	fail := func(format string, args ...any) {
		mu.Lock()
		if len(failures) < 5 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
		mu.Unlock()
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			fail("read body: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		m, rerr := receiver.DecodeRequest(w, r, secretfile.Source{}, 0)
		if rerr != nil {
			fail("DecodeRequest: %v", rerr)
			http.Error(w, rerr.Error(), rerr.Code)
			return
		}
		group := m.GroupLabels["group"]
		i, err := strconv.ParseInt(strings.TrimPrefix(group, prefix+"-"), 10, 64)
		if err != nil || !strings.HasPrefix(group, prefix+"-") || i < 1 {
			fail("group %q is not %s-N", group, prefix)
		}
		// wrk wrote the body after the test began and before it arrived
		// here, however long that took.
		after := time.Now().UTC().Add(-time.Minute)
		if len(m.Alerts) != alerts || m.Alerts[0].StartsAt.Before(earliest) || m.Alerts[0].StartsAt.After(after) {
			fail("delivery %s: %d alerts starting at %v, want %d starting a minute before it was sent", group, len(m.Alerts), m.Alerts[0].StartsAt, alerts)
		}
		norm := func(b []byte) string { return startsAtRE.ReplaceAllString(string(b), `"startsAt":"X"`) }
		if g, w := norm(body), norm(Payload(prefix, i, alerts, rb)); g != w {
			fail("delivery %d:\n got %s\nwant %s", i, g, w)
		}
		mu.Lock()
		dup := seen[m.GroupKey]
		seen[m.GroupKey] = true
		refuse := i%5 == 0
		if refuse {
			bad++
		} else {
			ok++
		}
		if len(seen) >= want {
			once.Do(func() { close(stop) })
		}
		mu.Unlock()
		if dup {
			fail("group key %s sent twice", m.GroupKey)
		}
		if refuse {
			http.Error(w, "refused", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{}`)
	}))
	defer srv.Close()

	r, err := RunWrk(WrkOptions{Binary: bin, Dir: t.TempDir(), URL: srv.URL + "/api/v1/webhook/alertmanager", Connections: 4, Threads: 2,
		Duration: time.Hour, Timeout: time.Minute, Prefix: prefix, Alerts: alerts, RunbookURL: rb, Stop: stop})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failures) > 0 {
		t.Fatalf("%d+ bad deliveries, first:\n%s", len(failures), strings.Join(failures, "\n"))
	}
	if len(seen) < want {
		t.Fatalf("server saw %d deliveries, want at least %d", len(seen), want)
	}
	// wrk stops with up to one request in flight per connection: those
	// were answered (or not) after wrk stopped counting.
	if r.OK() > ok || r.OK() < ok-4 || r.NonOK > bad || r.NonOK < bad-4 || r.SocketErrs != 0 {
		t.Fatalf("wrk: %d 2xx, %d other, %d socket errors; server answered %d 2xx and %d 400", r.OK(), r.NonOK, r.SocketErrs, ok, bad)
	}
	if r.NonOK > 0 && !strings.HasPrefix(r.FirstError, "400 refused") {
		t.Fatalf("first error %q, want the server's 400", r.FirstError)
	}
	if r.Corrected {
		t.Fatal("wrk's histogram was not read (webhook.lua's FFI read): only its corrected percentiles")
	}
	var n int64
	for _, b := range r.Latencies {
		n += b.Count
	}
	if n != int64(r.Requests) || r.Latencies.Quantile(0.5) <= 0 || r.Latencies.Quantile(1) < r.Latencies.Quantile(0.99) {
		t.Fatalf("latencies: %d samples for %d requests, p50 %v p99 %v max %v", n, r.Requests,
			r.Latencies.Quantile(0.5), r.Latencies.Quantile(0.99), r.Latencies.Quantile(1))
	}
	if r.CPU <= 0 || r.Elapsed <= 0 {
		t.Fatalf("wrk's CPU %v over %v", r.CPU, r.Elapsed)
	}
}

// correct is wrk's stats_correct (src/stats.c): what Uncorrect undoes.
func correct(h map[int64]int64, max, expected int64) {
	for n := expected * 2; n <= max; n++ {
		count := h[n]
		for m := n - expected; count > 0 && m > expected; m -= expected {
			h[m] += count
		}
	}
}

// TestUncorrect: a histogram that went through wrk's correction comes back
// as it was recorded, and its quantiles with it.
func TestUncorrect(t *testing.T) {
	orig := Histogram{{90, 5}, {100, 40}, {150, 3}, {250, 2}, {420, 1}, {1000, 1}}
	const runtime, requests, conns = 10_000, 200, 4 // e = 10000 / 50 = 200
	h := map[int64]int64{}
	for _, b := range orig {
		h[b.Micros] = b.Count
	}
	correct(h, 1000, 200)
	var corrected Histogram
	for us := int64(0); us <= 1000; us++ {
		if h[us] > 0 {
			corrected = append(corrected, Bucket{us, h[us]})
		}
	}
	if len(corrected) == len(orig) {
		t.Fatalf("the correction added nothing: %v", corrected)
	}
	got := Uncorrect(corrected, runtime, requests, conns)
	if fmt.Sprint(got) != fmt.Sprint(orig) {
		t.Fatalf("Uncorrect = %v, want %v (corrected: %v)", got, orig, corrected)
	}
	if q := got.Quantile(0.5); q != 100*time.Microsecond {
		t.Fatalf("p50 %v, want 100µs", q)
	}
	if q := got.Quantile(1); q != 1000*time.Microsecond {
		t.Fatalf("max %v, want 1ms", q)
	}
	// Fewer requests than connections: wrk corrects nothing.
	if got := Uncorrect(orig, runtime, 3, conns); fmt.Sprint(got) != fmt.Sprint(orig) {
		t.Fatalf("Uncorrect without a correction = %v", got)
	}
}
