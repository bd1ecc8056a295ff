package budget

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	commoncfg "github.com/prometheus/common/config"

	"github.com/rootuip/sre/pkg/testutil"
)

// TestUnavailableErrorHidesURLPassword: prometheus.url may carry basic-auth
// credentials (https://user:password@host); the error of a failed query is
// answered to viewers (503 of GET /api/v1/slos, the console's SLO pages)
// and logged, so it names the server without the password.
func TestUnavailableErrorHidesURLPassword(t *testing.T) {
	// Nothing listens: the query fails at once.
	addr := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
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
