package benchenv

import (
	"bufio"
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// WrkScript is the wrk script that sends Payload's deliveries (see
// webhook.lua): the closed-loop load of cmd/bench-http, from a generator
// written in C that uses far less CPU per request than a Go client on the
// cores sred shares.
//
//go:embed webhook.lua
var WrkScript []byte

// WrkOptions is one wrk run of WrkScript.
type WrkOptions struct {
	Binary      string        // wrk; "wrk" (on PATH) when empty
	Dir         string        // where the script is written
	URL         string        // the webhook
	Connections int           // keep-alive connections
	Threads     int           // wrk threads; at most Connections, which it must divide
	Duration    time.Duration // how long wrk runs (whole seconds, at least 1)
	Timeout     time.Duration // a request slower than this is a timeout error (not in the latencies)
	Prefix      string        // of the group keys: Payload(Prefix, i, ...)
	Alerts      int
	RunbookURL  string
	// Stop, when not nil, ends the run early when closed (SIGINT: wrk
	// stops its threads and prints its results as at the end of Duration).
	Stop <-chan struct{}
}

// WrkResult is what a wrk run measured.
type WrkResult struct {
	Requests   int // answers received, any status
	NonOK      int // answers other than 2xx
	SocketErrs int // connect, read and write errors: requests not answered
	// Timeouts is the answers slower than WrkOptions.Timeout: wrk counts
	// them in Requests (and by their status in NonOK or OK) and as
	// timeout errors, and leaves them out of the latency histogram.
	Timeouts   int
	FirstError string        // status and body of the first answer other than 2xx
	Elapsed    time.Duration // wrk's own run time
	// Latencies is the histogram of the answers' latencies, time from the
	// request's first byte written to its answer's last byte read, as
	// measured: wrk's correction for coordinated omission taken out
	// (Uncorrect).
	Latencies Histogram
	// Corrected is set when the histogram could not be read (see
	// webhook.lua): then Quantile answers p50, p99 and max only, wrk's own
	// figures, with its correction in them.
	Corrected bool
	corrected map[float64]time.Duration
	CPU       time.Duration // wrk's user and system CPU time
}

// Quantile is the q-quantile of the latencies (see Corrected).
func (r *WrkResult) Quantile(q float64) time.Duration {
	if r.Corrected {
		return r.corrected[q]
	}
	return r.Latencies.Quantile(q)
}

// OK is the number of 2xx answers.
func (r *WrkResult) OK() int { return r.Requests - r.NonOK }

// Bucket is one latency of a Histogram and how many requests took it.
type Bucket struct {
	Micros int64
	Count  int64
}

// Histogram is latencies in whole microseconds, ascending, as wrk records
// them.
type Histogram []Bucket

// Quantile is the q-quantile of h with Quantile's ranking (the latency of
// rank q·n rounded to the nearest, 1-based, at least 1); empty: 0.
func (h Histogram) Quantile(q float64) time.Duration {
	var n int64
	for _, b := range h {
		n += b.Count
	}
	if n == 0 {
		return 0
	}
	rank := max(1, min(int64(q*float64(n)+0.5), n))
	for _, b := range h {
		rank -= b.Count
		if rank <= 0 {
			return time.Duration(b.Micros) * time.Microsecond
		}
	}
	return time.Duration(h[len(h)-1].Micros) * time.Microsecond
}

// Uncorrect takes wrk's coordinated-omission correction out of h: at the
// end of a run wrk (stats_correct) adds, for every recorded latency v of
// count c, c samples at v-e, v-2e, ... while above e, where e, the
// expected interval between a connection's requests, is
// runtimeMicros / (requests / connections) in integer arithmetic. That
// models an open-loop client; the benchmark's closed-loop steps report
// what was measured, like the Go driver. Going down from the largest
// latency, the samples added to v are the originals at v+e, v+2e, ...,
// all larger and so already known.
func Uncorrect(h Histogram, runtimeMicros int64, requests, connections int) Histogram {
	if connections < 1 || requests/connections == 0 || len(h) == 0 {
		return h
	}
	e := runtimeMicros / int64(requests/connections)
	if e <= 0 {
		return h
	}
	orig := map[int64]int64{}
	out := make(Histogram, 0, len(h))
	for k := len(h) - 1; k >= 0; k-- {
		b := h[k]
		c := b.Count
		if b.Micros > e {
			for m := b.Micros + e; m <= h[len(h)-1].Micros; m += e {
				c -= orig[m]
			}
		}
		orig[b.Micros] = c
		if c > 0 {
			out = append(out, Bucket{b.Micros, c})
		}
	}
	slices.Reverse(out)
	return out
}

// RunWrk runs wrk with WrkScript as o says and reads its results.
func RunWrk(o WrkOptions) (*WrkResult, error) {
	bin := o.Binary
	if bin == "" {
		bin = "wrk"
	}
	// The script writes them into JSON strings as they are.
	if strings.ContainsAny(o.Prefix+o.RunbookURL, "\"\\\n\r\t") {
		return nil, fmt.Errorf("wrk: prefix %q or runbook URL %q holds a character JSON would escape", o.Prefix, o.RunbookURL)
	}
	threads := max(1, min(o.Threads, o.Connections))
	for o.Connections%threads != 0 {
		threads--
	}
	script := filepath.Join(o.Dir, "webhook.lua")
	if err := os.WriteFile(script, WrkScript, 0o644); err != nil {
		return nil, err
	}
	secs := max(1, int((o.Duration+time.Second-1)/time.Second))
	timeout := max(1, int((o.Timeout+time.Second-1)/time.Second))
	cmd := exec.Command(bin, "-t", strconv.Itoa(threads), "-c", strconv.Itoa(o.Connections),
		"-d", strconv.Itoa(secs)+"s", "--timeout", strconv.Itoa(timeout)+"s", "-s", script, o.URL,
		"--", o.Prefix, strconv.Itoa(o.Alerts), strconv.Itoa(threads), o.RunbookURL)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start wrk: %w", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var err error
	select {
	case err = <-waited:
	case <-o.Stop:
		_ = cmd.Process.Signal(os.Interrupt)
		err = <-waited
	}
	if err != nil {
		return nil, fmt.Errorf("wrk: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	r, err := parseWrk(out.Bytes(), o.Connections)
	if err != nil {
		return nil, fmt.Errorf("wrk: %w (output: %q)", err, tail(out.Bytes(), 500))
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return r, nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// parseWrk reads the lines WrkScript's done() prints.
func parseWrk(out []byte, connections int) (*WrkResult, error) {
	r := &WrkResult{}
	var durationUs int64
	seen := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "wrk-result "):
			seen = true
			for _, kv := range strings.Fields(strings.TrimPrefix(line, "wrk-result ")) {
				k, v, _ := strings.Cut(kv, "=")
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("result %q: %w", kv, err)
				}
				switch k {
				case "requests":
					r.Requests = int(n)
				case "duration_us":
					durationUs = n
				case "non2xx":
					r.NonOK = int(n)
				case "connect", "read", "write":
					r.SocketErrs += int(n)
				case "timeout":
					// An answer, already in requests (wrk's
					// response_complete counts it there, then as a
					// timeout when its latency does not fit the
					// histogram): not a socket error besides.
					r.Timeouts = int(n)
				}
			}
		case strings.HasPrefix(line, "wrk-corrected "):
			r.corrected = map[float64]time.Duration{}
			for _, kv := range strings.Fields(strings.TrimPrefix(line, "wrk-corrected ")) {
				k, v, _ := strings.Cut(kv, "=")
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("corrected %q: %w", kv, err)
				}
				q := map[string]float64{"p50": 0.5, "p99": 0.99, "max": 1}[k]
				r.corrected[q] = time.Duration(n) * time.Microsecond
			}
		case strings.HasPrefix(line, "wrk-first-error "):
			r.FirstError = strings.TrimPrefix(line, "wrk-first-error ")
		case strings.HasPrefix(line, "wrk-latency "):
			f := strings.Fields(line)
			if len(f) != 3 {
				return nil, fmt.Errorf("latency line %q", line)
			}
			us, err1 := strconv.ParseInt(f[1], 10, 64)
			c, err2 := strconv.ParseInt(f[2], 10, 64)
			if err := errors.Join(err1, err2); err != nil {
				return nil, fmt.Errorf("latency line %q: %w", line, err)
			}
			r.Latencies = append(r.Latencies, Bucket{us, c})
		}
	}
	if !seen {
		return nil, errors.New("no wrk-result line")
	}
	r.Elapsed = time.Duration(durationUs) * time.Microsecond
	r.Corrected = len(r.Latencies) == 0 && r.corrected != nil
	r.Latencies = Uncorrect(r.Latencies, durationUs, r.Requests, connections)
	return r, nil
}
