package budget

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	commoncfg "github.com/prometheus/common/config"
)

// TestUnavailableErrorHidesURLPassword: prometheus.url may carry basic-auth
// credentials (https://user:password@host); the error of a failed query is
// answered to viewers (503 of GET /api/v1/slos, the console's SLO pages)
// and logged, so it names the server without the password.
func TestUnavailableErrorHidesURLPassword(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: the query fails at once
	p, err := NewProm("http://sred:s3cr3t-pw@"+addr, commoncfg.DefaultHTTPClientConfig, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Instant(context.Background(), "up", time.Now())
	if !IsUnavailable(err) {
		t.Fatalf("want an UnavailableError, got %v", err)
	}
	if msg := err.Error(); strings.Contains(msg, "s3cr3t-pw") || !strings.Contains(msg, "http://sred:xxxxx@"+addr) {
		t.Fatalf("error %q: want the URL without its password", msg)
	}
}
