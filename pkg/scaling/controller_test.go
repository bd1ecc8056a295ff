package scaling

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/runbook"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/targetlock"
	"github.com/rootuip/sre/pkg/testutil"
)

// hpaCluster is what the HPA controller reports; pkg/kube/hpa reads the real one.
type hpaCluster struct {
	mu      sync.Mutex
	desired int32
	reads   int
	read    chan struct{}
}

func (h *hpaCluster) HPAStatus(_ context.Context, namespace, name string) (HPAStatus, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reads++
	defer func() { h.read <- struct{}{} }()
	return HPAStatus{CurrentReplicas: h.desired, DesiredReplicas: h.desired}, nil
}

// refuses fails the test if sred acts on a target the HPA scales.
type refuses struct{ t *testing.T }

func (r refuses) Actuate(context.Context, *runbook.Action, map[string]string) runbook.ActionResult {
	r.t.Error("sred acted on a target the HPA scales")
	return runbook.ActionResult{Status: runbook.StepFailed}
}

// The controller's loop runs on its clock: each interval of a policy
// Kubernetes scales, it reads the HPA, exports its desired replicas and
// reports a change, and never acts (it does not fight the HPA).
func TestRunObservesTheHPA(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{Migrations, targetlock.Migrations}, func(t *testing.T, db *store.DB) {
		p, err := Parse([]byte(`service: api
target: {kubernetes: {namespace: production, name: api}}
min_instances: 2
max_instances: 20
metric: {type: cpu}
interval: 30s
scale_up: {threshold: 80}
scale_down: {threshold: 30}
`), "api.yml")
		if err != nil {
			t.Fatal(err)
		}
		clk := clock.NewManual(time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC))
		h := &hpaCluster{desired: 4, read: make(chan struct{}, 16)}
		bus := events.NewBus(16, nil)
		evs, stop := bus.Subscribe()
		defer stop()
		reg := prometheus.NewRegistry()
		c := New(Options{DB: db, HPA: h, Actuator: refuses{t}, Bus: bus, Clock: clk, Registerer: reg})
		c.SetConfig(DefaultConfig, []*Policy{p})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- c.Run(ctx) }()

		<-h.read // the first round reads at once
		ev := <-evs
		if ev.Type != "scaling.observed" || ev.Data["desired_replicas"] != int32(4) {
			t.Fatalf("event %+v", ev)
		}
		for _, desired := range []int32{4, 7} {
			h.mu.Lock()
			h.desired = desired
			h.mu.Unlock()
			// Wait until the loop sleeps on the clock, then move it one interval.
			for {
				n, changed := clk.Waiters()
				if n > 0 {
					break
				}
				<-changed
			}
			clk.Advance(30 * time.Second)
			<-h.read
		}
		ev = <-evs // only the change to 7 is reported
		if ev.Data["desired_replicas"] != int32(7) || ev.Data["previous_desired_replicas"] != int32(4) {
			t.Fatalf("event %+v", ev)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := testGauge(t, reg, "sre_scaling_desired_instances"); got != 7 {
			t.Fatalf("sre_scaling_desired_instances = %g", got)
		}
		if st := c.HPAStatuses()["api"]; st.DesiredReplicas != 7 {
			t.Fatalf("HPA status %+v", st)
		}
	})
}

func testGauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.Metric) == 1 {
			return mf.Metric[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("%s not gathered", name)
	return 0
}

// cluster records the scale calls of the runbook engine's kubernetes client.
type cluster struct {
	runbook.Kubernetes // the other actions are not used here
	mu                 sync.Mutex
	current            int32
	scaled             []string
}

func (k *cluster) Scale(_ context.Context, ns, dep string, desired func(int32) int32) (int32, int32, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	from := k.current
	k.current = desired(from)
	k.scaled = append(k.scaled, fmt.Sprintf("%s/%s %d->%d", ns, dep, from, k.current))
	return from, k.current, nil
}

// A Deployment that sred scales (controller: sred) is scaled to the
// decided count through the runbook engine's kubernetes action.
func TestKubernetesScaleAction(t *testing.T) {
	p, err := Parse([]byte(`service: api
target: {kubernetes: {namespace: production, name: api}, controller: sred}
min_instances: 2
max_instances: 20
metric: {type: cpu}
scale_up: {threshold: 80}
scale_down: {threshold: 30}
`), "api.yml")
	if err != nil {
		t.Fatal(err)
	}
	k := &cluster{current: 3}
	act, err := runbook.NewActuator(runbook.DefaultConfig, func(runbook.KubernetesConfig) (runbook.Kubernetes, error) { return k, nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := New(Options{})
	a, err := c.action(p, Decision{Direction: Up, From: 3, To: 5}, DefaultConfig)
	if err != nil {
		t.Fatal(err)
	}
	if res := act.Actuate(context.Background(), a, map[string]string{"replicas": "5"}); !res.OK() {
		t.Fatalf("scale: %v", res.Err())
	}
	if len(k.scaled) != 1 || k.scaled[0] != "production/api 3->5" {
		t.Fatalf("scaled %v", k.scaled)
	}
	p.Target.Kubernetes.Kind = "StatefulSet"
	if _, err := c.action(p, Decision{To: 5}, DefaultConfig); err == nil {
		t.Fatal("sred scaled a StatefulSet")
	}
}
