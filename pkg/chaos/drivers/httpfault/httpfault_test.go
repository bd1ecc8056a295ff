package httpfault

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/chaos"
)

func setup(t *testing.T) (*Driver, string) {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(up.Close)
	d, err := New([]chaos.ProxyConfig{{Name: "pay", Kind: "http", Listen: "127.0.0.1:0", Upstream: up.URL}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d, "http://" + d.Addr("pay")
}

func count(t *testing.T, url string, n int) (codes map[int]int) {
	t.Helper()
	codes = map[int]int{}
	for range n {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes[resp.StatusCode]++
	}
	return codes
}

func TestErrors(t *testing.T) {
	d, base := setup(t)
	ctx := context.Background()
	all := chaos.Fault{Type: chaos.FaultHTTPError, Proxy: "pay", Paths: []string{"/api/pay"}, Percent: 100, Status: 503}
	half := chaos.Fault{Type: chaos.FaultHTTPError, Proxy: "pay", Paths: []string{"/api/refund"}, Percent: 50, Status: 500}
	if _, err := d.Inject(ctx, "a", all); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Inject(ctx, "b", half); err != nil {
		t.Fatal(err)
	}
	if c := count(t, base+"/api/pay/123", 20); c[503] != 20 {
		t.Fatalf("/api/pay with 100%% errors: %v", c)
	}
	if c := count(t, base+"/api/other", 20); c[200] != 20 {
		t.Fatalf("other path affected: %v", c)
	}
	if c := count(t, base+"/api/refund", 100); c[500] < 20 || c[500] > 80 || c[200] != 100-c[500] {
		t.Fatalf("/api/refund with 50%% errors: %v", c)
	}
	_ = d.Revert(ctx, "a", all, nil)
	_ = d.Revert(ctx, "b", half, nil)
	if c := count(t, base+"/api/pay", 20); c[200] != 20 {
		t.Fatalf("after revert: %v", c)
	}
	if c := count(t, base+"/api/refund", 20); c[200] != 20 {
		t.Fatalf("after revert: %v", c)
	}
}

func TestDelay(t *testing.T) {
	d, base := setup(t)
	ctx := context.Background()
	f := chaos.Fault{Type: chaos.FaultHTTPDelay, Proxy: "pay", Paths: []string{"/slow"}, Percent: 100, Delay: model.Duration(time.Second)}
	if _, err := d.Inject(ctx, "a", f); err != nil {
		t.Fatal(err)
	}
	took := func(p string) time.Duration {
		start := time.Now()
		count(t, base+p, 1)
		return time.Since(start)
	}
	if d := took("/slow/x"); d < time.Second {
		t.Fatalf("slow endpoint took %v, want >= 1s", d)
	}
	if d := took("/fast"); d >= time.Second {
		t.Fatalf("other endpoint took %v", d)
	}
	_ = d.Revert(ctx, "a", f, nil)
	if d := took("/slow/x"); d >= time.Second {
		t.Fatalf("after revert: %v", d)
	}
}

// TestLazyBind: a proxy whose address is taken does not stop New; Inject
// says why it cannot listen; once the address is free, Bind makes it
// listen and its rules apply.
func TestLazyBind(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	holder, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := holder.Addr().String()
	d, err := New([]chaos.ProxyConfig{{Name: "pay", Kind: "http", Listen: addr, Upstream: up.URL}})
	if err != nil {
		t.Fatalf("New with a taken address: %v", err)
	}
	defer d.Close()
	if err := d.Unbound()["pay"]; err == nil || !strings.Contains(err.Error(), "http proxy pay cannot listen on "+addr) {
		t.Fatalf("Unbound: %v", err)
	}
	f := chaos.Fault{Name: "e", Type: chaos.FaultHTTPError, Proxy: "pay", Percent: 100, Status: 503}
	if _, err := d.Inject(context.Background(), "f-1", f); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Inject on an unbound proxy: %v", err)
	}
	holder.Close()
	if err := d.Bind("pay"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Inject(context.Background(), "f-1", f); err != nil {
		t.Fatal(err)
	}
	if got := count(t, "http://"+addr+"/", 5); got[503] != 5 {
		t.Fatalf("codes %v, want 5 x 503", got)
	}
	if len(d.Unbound()) != 0 || d.Addr("pay") != addr {
		t.Fatalf("unbound %v, addr %s", d.Unbound(), d.Addr("pay"))
	}
}
