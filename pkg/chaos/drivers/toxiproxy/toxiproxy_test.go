package toxiproxy

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
	body := strings.Repeat("x", 100<<10)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			io.WriteString(w, body)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	d, err := New([]chaos.ProxyConfig{{Name: "dep", Kind: "tcp", Listen: "127.0.0.1:0", Upstream: strings.TrimPrefix(up.URL, "http://")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d, "http://" + d.Addr("dep")
}

var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}

// get returns how long a request through the proxy took, and its error.
func get(url string) (time.Duration, error) {
	start := time.Now()
	resp, err := client.Get(url)
	if err != nil {
		return time.Since(start), err
	}
	defer resp.Body.Close()
	_, err = io.ReadAll(resp.Body)
	return time.Since(start), err
}

func run(t *testing.T, d *Driver, f chaos.Fault, during func(), after func()) {
	t.Helper()
	ctx := context.Background()
	st, err := d.Inject(ctx, "f-1", f)
	if err != nil {
		t.Fatal(err)
	}
	during()
	if err := d.Revert(ctx, "f-1", f, st); err != nil {
		t.Fatal(err)
	}
	if err := d.Revert(ctx, "f-1", f, st); err != nil {
		t.Fatalf("second revert: %v", err)
	}
	after()
}

func TestLatency(t *testing.T) {
	d, url := setup(t)
	f := chaos.Fault{Type: chaos.FaultLatency, Proxy: "dep", Latency: model.Duration(time.Second), Jitter: model.Duration(100 * time.Millisecond)}
	run(t, d, f, func() {
		if took, err := get(url); err != nil || took < 900*time.Millisecond {
			t.Fatalf("with latency: %v, %v; want >= 900ms", took, err)
		}
	}, func() {
		if took, err := get(url); err != nil || took >= 900*time.Millisecond {
			t.Fatalf("after revert: %v, %v; want < 900ms", took, err)
		}
	})
}

func TestPartition(t *testing.T) {
	d, url := setup(t)
	f := chaos.Fault{Type: chaos.FaultPartition, Proxy: "dep"}
	run(t, d, f, func() {
		if _, err := get(url); err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("partitioned: got %v, want connection refused", err)
		}
	}, func() {
		if _, err := get(url); err != nil {
			t.Fatalf("after revert: %v", err)
		}
	})
}

func TestResetPeer(t *testing.T) {
	d, url := setup(t)
	f := chaos.Fault{Type: chaos.FaultReset, Proxy: "dep", Percent: 50}
	run(t, d, f, func() {
		failed := 0
		for range 40 {
			if _, err := get(url); err != nil {
				failed++
			}
		}
		if failed == 0 || failed == 40 {
			t.Fatalf("%d of 40 requests reset, want some but not all (50%%)", failed)
		}
	}, func() {
		for range 20 {
			if _, err := get(url); err != nil {
				t.Fatalf("after revert: %v", err)
			}
		}
	})
}

func TestTimeout(t *testing.T) {
	d, url := setup(t)
	f := chaos.Fault{Type: chaos.FaultTimeout, Proxy: "dep", Timeout: model.Duration(200 * time.Millisecond)}
	run(t, d, f, func() {
		if _, err := get(url); err == nil {
			t.Fatal("request through a timed-out link succeeded")
		}
	}, func() {
		if _, err := get(url); err != nil {
			t.Fatalf("after revert: %v", err)
		}
	})
}

func TestBandwidth(t *testing.T) {
	d, url := setup(t)
	f := chaos.Fault{Type: chaos.FaultBandwidth, Proxy: "dep", RateKBps: 50}
	run(t, d, f, func() {
		// 100 KiB at 50 KB/s takes about 2s.
		if took, err := get(url + "/big"); err != nil || took < 1500*time.Millisecond {
			t.Fatalf("limited: %v, %v; want >= 1.5s", took, err)
		}
	}, func() {
		if took, err := get(url + "/big"); err != nil || took >= 1500*time.Millisecond {
			t.Fatalf("after revert: %v, %v", took, err)
		}
	})
}

func TestUnknownProxy(t *testing.T) {
	d, _ := setup(t)
	_, err := d.Inject(context.Background(), "f-1", chaos.Fault{Type: chaos.FaultLatency, Proxy: "nope", Latency: model.Duration(time.Second)})
	if err == nil || !strings.Contains(err.Error(), `no tcp proxy "nope"`) {
		t.Fatalf("got %v", err)
	}
}

// TestLazyBind: a proxy whose address is taken does not stop New; Bind and
// Inject say why it cannot listen; once the address is free, Bind makes it
// listen and faults apply.
func TestLazyBind(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	holder, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := holder.Addr().String()
	d, err := New([]chaos.ProxyConfig{{Name: "dep", Kind: "tcp", Listen: addr, Upstream: strings.TrimPrefix(up.URL, "http://")}})
	if err != nil {
		t.Fatalf("New with a taken address: %v", err)
	}
	defer d.Close()
	if err := d.Unbound()["dep"]; err == nil || !strings.Contains(err.Error(), "tcp proxy dep cannot listen on "+addr) {
		t.Fatalf("Unbound: %v", err)
	}
	f := chaos.Fault{Name: "l", Type: chaos.FaultLatency, Proxy: "dep", Latency: model.Duration(300 * time.Millisecond)}
	if _, err := d.Inject(context.Background(), "f-1", f); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Inject on an unbound proxy: %v", err)
	}
	holder.Close()
	if err := d.Bind("dep"); err != nil {
		t.Fatal(err)
	}
	if len(d.Unbound()) != 0 {
		t.Fatalf("still unbound: %v", d.Unbound())
	}
	if err := d.Bind("dep"); err != nil {
		t.Fatalf("second Bind: %v", err)
	}
	run(t, d, f, func() {
		if took, err := get("http://" + addr + "/"); err != nil || took < 300*time.Millisecond {
			t.Fatalf("with latency: %v %v", took, err)
		}
	}, func() {})
}
