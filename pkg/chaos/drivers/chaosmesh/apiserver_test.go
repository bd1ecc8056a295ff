package chaosmesh

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/rootuip/sre/pkg/chaos"
	"github.com/rootuip/sre/pkg/clock"
)

// chaosAPIServer plays a Kubernetes API server with the Chaos Mesh CRDs
// installed, over TLS as API servers are: it admits a custom resource only
// when it is valid against the CRD's schema (422 otherwise, as the API
// server's structural schema validation does), keeps it until it is
// deleted, and records every request with its bearer token.
type chaosAPIServer struct {
	*httptest.Server
	schemas  map[string]*jsonschema.Schema
	mu       sync.Mutex
	objects  map[string]map[string]any // by path
	reads    map[string]int            // GETs of each object
	requests []string
}

func newChaosAPIServer(t *testing.T) *chaosAPIServer {
	s := &chaosAPIServer{schemas: crdSchemas(t), objects: map[string]map[string]any{}, reads: map[string]int{}}
	kinds := map[string]string{}
	for k := range s.schemas {
		kinds[strings.ToLower(k)] = k
	}
	prefix := "/apis/" + Group + "/" + Version + "/namespaces/"
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.requests = append(s.requests, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		status := func(code int, reason, msg string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure",
				"reason": reason, "message": msg, "code": code})
		}
		if r.Header.Get("Authorization") != "Bearer chaos-token" {
			status(http.StatusUnauthorized, "Unauthorized", "bad credentials")
			return
		}
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, prefix), "/") // ns, plural[, name]
		if !strings.HasPrefix(r.URL.Path, prefix) || len(parts) < 2 || kinds[parts[1]] == "" {
			status(http.StatusNotFound, "NotFound", "no such resource type "+r.URL.Path)
			return
		}
		kind := kinds[parts[1]]
		switch {
		case r.Method == http.MethodPost && len(parts) == 2:
			b, _ := io.ReadAll(r.Body)
			var obj map[string]any
			if err := json.Unmarshal(b, &obj); err != nil {
				status(http.StatusBadRequest, "BadRequest", err.Error())
				return
			}
			inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err := s.schemas[kind].Validate(inst); err != nil {
				status(http.StatusUnprocessableEntity, "Invalid", fmt.Sprintf("%s is invalid: %v", kind, err))
				return
			}
			md, _ := obj["metadata"].(map[string]any)
			name, _ := md["name"].(string)
			path := r.URL.Path + "/" + name
			if _, ok := s.objects[path]; ok {
				status(http.StatusConflict, "AlreadyExists", name+" already exists")
				return
			}
			s.objects[path] = obj
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write(b)
		case r.Method == http.MethodGet && len(parts) == 3:
			obj, ok := s.objects[r.URL.Path]
			if !ok {
				status(http.StatusNotFound, "NotFound", parts[2]+" not found")
				return
			}
			// The Chaos Mesh controller, later than the creation: from the
			// second read on, the fault is reported injected (never for a
			// resource named "stuck").
			s.reads[r.URL.Path]++
			injected := "False"
			if s.reads[r.URL.Path] > 1 && !strings.HasSuffix(parts[2], "-stuck") {
				injected = "True"
			}
			obj["status"] = map[string]any{"conditions": []any{
				map[string]any{"type": "Selected", "status": "True"},
				map[string]any{"type": "AllInjected", "status": injected}}}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(obj)
		case r.Method == http.MethodDelete && len(parts) == 3:
			if _, ok := s.objects[r.URL.Path]; !ok {
				status(http.StatusNotFound, "NotFound", parts[2]+" not found")
				return
			}
			delete(s.objects, r.URL.Path)
			status(http.StatusOK, "", "")
		default:
			status(http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *chaosAPIServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.objects)
}

// tlsDriver starts the API server fixture and a driver talking to it over
// TLS through the real dynamic client, on a manual clock that moves by the
// driver's Poll each time the driver waits on it (no real wait per fault).
func tlsDriver(t *testing.T) (*chaosAPIServer, *Driver) {
	t.Helper()
	srv := newChaosAPIServer(t)
	cfg := &rest.Config{Host: srv.URL, BearerToken: "chaos-token",
		TLSClientConfig: rest.TLSClientConfig{CAData: pemCert(srv.Server)}}
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mc := clock.NewManual(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))
	d := &Driver{Client: client, MaxDuration: time.Hour, InjectTimeout: time.Minute, Poll: 20 * time.Millisecond, Clock: mc}
	advanceWhileWaited(t, mc, d.Poll)
	return srv, d
}

// advanceWhileWaited moves mc by step each time a timer waits on it, until
// the test ends.
func advanceWhileWaited(t *testing.T, mc *clock.Manual, step time.Duration) {
	t.Helper()
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			n, changed := mc.Waiters()
			if n > 0 {
				mc.Advance(step)
				continue
			}
			select {
			case <-changed:
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-stopped
	})
}

// TestDriverAgainstTLSAPIServer drives every fault kind through the real
// dynamic client over TLS: each resource is admitted by the CRD schema,
// exists while the fault is active and is gone after the revert (twice:
// idempotent); an invalid resource is refused with the schema's reason.
func TestDriverAgainstTLSAPIServer(t *testing.T) {
	srv, d := tlsDriver(t)
	ctx := context.Background()
	for _, f := range faults {
		f.Driver, f.Kubernetes = chaos.DriverChaosMesh, sel
		id := "chx-20261202-100000-abc-" + f.Name
		st, err := d.Inject(ctx, id, f)
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		if srv.count() != 1 {
			t.Fatalf("%s: %d resources after inject", f.Name, srv.count())
		}
		srv.mu.Lock()
		reads := srv.reads[prefixOf(f)+Name(id)]
		srv.mu.Unlock()
		if reads < 2 {
			t.Fatalf("%s: Inject returned after %d read(s), before Chaos Mesh reported AllInjected", f.Name, reads)
		}
		if err := d.Revert(ctx, id, f, st); err != nil {
			t.Fatalf("%s: revert: %v", f.Name, err)
		}
		if err := d.Revert(ctx, id, f, st); err != nil {
			t.Fatalf("%s: second revert: %v", f.Name, err)
		}
		if srv.count() != 0 {
			t.Fatalf("%s: %d resources after revert", f.Name, srv.count())
		}
	}
	srv.mu.Lock()
	for _, r := range srv.requests {
		if !strings.HasSuffix(r, " Bearer chaos-token") {
			t.Errorf("request without the token: %s", r)
		}
	}
	srv.mu.Unlock()

	// A resource Chaos Mesh never reports injected: Inject keeps reading it
	// until InjectTimeout has passed on its clock, then fails (and the
	// runner rolls back).
	stuck := chaos.Fault{Name: "stuck", Type: chaos.FaultCPUStress, CPUPercent: 50, Workers: 1, Driver: chaos.DriverChaosMesh, Kubernetes: sel}
	start := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	mc := clock.NewManual(start)
	quick := &Driver{Client: d.Client, MaxDuration: time.Hour, InjectTimeout: 500 * time.Millisecond, Poll: 20 * time.Millisecond, Clock: mc}
	st, err := injectOnManualClock(t, quick, mc, "chx-stuck", stuck)
	if err == nil || !strings.Contains(err.Error(), "Chaos Mesh did not report AllInjected within 500ms (conditions map[AllInjected:False Selected:True])") {
		t.Fatalf("never injected: %v", err)
	}
	if waited := mc.Now().Sub(start); waited <= 500*time.Millisecond || waited > 520*time.Millisecond {
		t.Fatalf("Inject gave up after %v of its clock, want just past the 500ms InjectTimeout", waited)
	}
	srv.mu.Lock()
	reads := srv.reads[prefixOf(stuck)+Name("chx-stuck")]
	srv.mu.Unlock()
	if reads != 27 { // at 0, 20ms, ... 500ms, and at 520ms, past the deadline
		t.Fatalf("Inject read the stuck resource %d times, want 27 (every 20ms until past 500ms)", reads)
	}
	if err := quick.Revert(ctx, "chx-stuck", stuck, st); err != nil || srv.count() != 0 {
		t.Fatalf("revert of the stuck resource: %v (%d left)", err, srv.count())
	}

	// A manifest the CRD refuses (a negative CPU load) is refused by the
	// server, and the error says why.
	bad := chaos.Fault{Name: "bad", Type: chaos.FaultCPUStress, CPUPercent: -5, Workers: 1, Driver: chaos.DriverChaosMesh, Kubernetes: sel}
	_, err = d.Inject(ctx, "chx-bad", bad)
	if err == nil || !strings.Contains(err.Error(), "StressChaos is invalid") {
		t.Fatalf("invalid StressChaos: %v", err)
	}
	if srv.count() != 0 {
		t.Fatal("an invalid resource was stored")
	}
}

// injectOnManualClock runs d.Inject while moving mc by d.Poll each time
// Inject waits on it, and returns what Inject returned.
func injectOnManualClock(t *testing.T, d *Driver, mc *clock.Manual, id string, f chaos.Fault) (json.RawMessage, error) {
	t.Helper()
	type result struct {
		st  json.RawMessage
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := d.Inject(context.Background(), id, f)
		done <- result{st, err}
	}()
	for {
		n, changed := mc.Waiters()
		if n > 0 {
			mc.Advance(d.Poll)
			continue
		}
		select {
		case r := <-done:
			return r.st, r.err
		case <-changed:
		}
	}
}

// pemCert is the PEM certificate of s, for the client's CA.
func pemCert(s *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
}

// prefixOf is the API path of the collection of f's resource in namespace checkout.
func prefixOf(f chaos.Fault) string {
	u, _ := Manifest("x", f, time.Hour, 1)
	return "/apis/" + Group + "/" + Version + "/namespaces/checkout/" + strings.ToLower(u.GetKind()) + "/"
}

// TestDurationIsTheRunsLifetime: the resource's spec.duration, which ends
// the fault when its sred died and nothing deletes it, is the run's bound
// (chaos.WithLifetime) when that is shorter than MaxDuration.
func TestDurationIsTheRunsLifetime(t *testing.T) {
	_, d := tlsDriver(t)
	f := chaos.Fault{Name: "cpu", Type: chaos.FaultCPUStress, CPUPercent: 50, Workers: 1, Driver: chaos.DriverChaosMesh, Kubernetes: sel}
	for _, tc := range []struct {
		ctx  context.Context
		want string
	}{
		{chaos.WithLifetime(context.Background(), 95*time.Second), "1m35s"},
		{chaos.WithLifetime(context.Background(), 3*time.Hour), "1h0m0s"},
		{context.Background(), "1h0m0s"},
	} {
		id := "chx-20261202-100000-abc-cpu"
		st, err := d.Inject(tc.ctx, id, f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.Client.Resource(GVR("StressChaos")).Namespace(sel.Namespace).Get(context.Background(), Name(id), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if dur, _, _ := unstructured.NestedString(got.Object, "spec", "duration"); dur != tc.want {
			t.Errorf("spec.duration %q, want %q", dur, tc.want)
		}
		if err := d.Revert(context.Background(), id, f, st); err != nil {
			t.Fatal(err)
		}
	}
}

// The resource acts on as many pods as the experiment's target.instances
// (chaos.WithInstances), which the blast radius check allowed: not always
// one, and never a share of the pods beyond it.
func TestPodsAreTheTargetsInstances(t *testing.T) {
	_, d := tlsDriver(t)
	for _, tc := range []struct {
		ctx         context.Context
		mode, value string
	}{
		{chaos.WithInstances(context.Background(), 3), "fixed", "3"},
		{chaos.WithInstances(context.Background(), 1), "one", ""},
		{context.Background(), "one", ""},
	} {
		for _, f := range []chaos.Fault{
			{Name: "cpu", Type: chaos.FaultCPUStress, CPUPercent: 50, Workers: 1, Driver: chaos.DriverChaosMesh, Kubernetes: sel},
			{Name: "err", Type: chaos.FaultHTTPError, Paths: []string{"/api/pay"}, Percent: 100, Status: 503, Driver: chaos.DriverChaosMesh, Kubernetes: sel},
		} {
			id := "chx-20261202-100000-abc-" + f.Name
			st, err := d.Inject(tc.ctx, id, f)
			if err != nil {
				t.Fatal(err)
			}
			var st2 state
			_ = json.Unmarshal(st, &st2)
			got, err := d.Client.Resource(GVR(st2.Kind)).Namespace(sel.Namespace).Get(context.Background(), Name(id), metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			mode, _, _ := unstructured.NestedString(got.Object, "spec", "mode")
			value, _, _ := unstructured.NestedString(got.Object, "spec", "value")
			if mode != tc.mode || value != tc.value {
				t.Errorf("%s: spec.mode %q value %q, want %q %q", f.Name, mode, value, tc.mode, tc.value)
			}
			if err := d.Revert(context.Background(), id, f, st); err != nil {
				t.Fatal(err)
			}
		}
	}
}
