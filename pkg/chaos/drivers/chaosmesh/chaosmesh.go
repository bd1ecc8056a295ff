// Package chaosmesh expresses faults on Kubernetes as Chaos Mesh resources
// (NetworkChaos, StressChaos, PodChaos, HTTPChaos, chaos-mesh.org/v1alpha1)
// and creates, watches and deletes them through the Kubernetes dynamic
// client. Chaos Mesh injects and recovers; this driver owns the lifecycle:
// each resource is named after the fault's journal id, so a revert (also in
// a restarted sred) deletes exactly it.
package chaosmesh

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/rootuip/sre/pkg/chaos"
	"github.com/rootuip/sre/pkg/clock"
)

// Group and version of the Chaos Mesh API.
const (
	Group   = "chaos-mesh.org"
	Version = "v1alpha1"
)

// GVR returns the resource of a kind (NetworkChaos -> networkchaos).
func GVR(kind string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: Group, Version: Version, Resource: strings.ToLower(kind)}
}

var invalid = regexp.MustCompile(`[^a-z0-9-]+`)

// Name returns the resource name of fault id: DNS-1123, at most 63 characters.
func Name(id string) string {
	n := "sre-" + strings.Trim(invalid.ReplaceAllString(strings.ToLower(id), "-"), "-")
	if len(n) > 63 {
		h := sha256.Sum256([]byte(id))
		n = strings.TrimRight(n[:50], "-") + "-" + hex.EncodeToString(h[:])[:12]
	}
	return n
}

// Manifest returns the Chaos Mesh resource of fault f (journal id), bounded
// by maxDuration, acting on pods of the selected ones (the experiment's
// target.instances, which the blast radius check allowed; at least one).
func Manifest(id string, f chaos.Fault, maxDuration time.Duration, pods int) (*unstructured.Unstructured, error) {
	k := f.Kubernetes
	if k == nil {
		return nil, fmt.Errorf("fault %s: kubernetes selector missing", f.Name)
	}
	labels := map[string]any{}
	for key, v := range k.Labels {
		labels[key] = v
	}
	spec := map[string]any{
		"mode":     "one",
		"selector": map[string]any{"namespaces": []any{k.Namespace}, "labelSelectors": labels},
		"duration": maxDuration.String(),
	}
	if pods > 1 {
		spec["mode"], spec["value"] = "fixed", strconv.Itoa(pods)
	}
	var kind string
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + "ms" }
	network := func(action string) {
		kind = "NetworkChaos"
		spec["action"] = action
		if len(k.ExternalTargets) > 0 {
			ts := make([]any, len(k.ExternalTargets))
			for i, t := range k.ExternalTargets {
				ts[i] = t
			}
			spec["externalTargets"] = ts
			spec["direction"] = "to"
		}
	}
	switch f.Type {
	case chaos.FaultLatency:
		network("delay")
		spec["delay"] = map[string]any{"latency": ms(time.Duration(f.Latency)), "jitter": ms(time.Duration(f.Jitter)), "correlation": "0"}
	case chaos.FaultReset:
		network("loss")
		spec["loss"] = map[string]any{"loss": strconv.FormatFloat(f.Percent, 'f', -1, 64), "correlation": "0"}
	case chaos.FaultBandwidth:
		network("bandwidth")
		spec["bandwidth"] = map[string]any{"rate": strconv.FormatInt(f.RateKBps, 10) + "kbps", "limit": int64(20971520), "buffer": int64(10000)}
	case chaos.FaultPartition:
		network("partition")
		if _, ok := spec["direction"]; !ok {
			spec["direction"] = "both"
		}
	case chaos.FaultTimeout:
		return nil, fmt.Errorf("fault %s: Chaos Mesh has no connection timeout fault; use partition or the toxiproxy driver", f.Name)
	case chaos.FaultHTTPDelay, chaos.FaultHTTPError:
		kind = "HTTPChaos"
		spec["target"] = "Request"
		port := int64(k.Port)
		if port == 0 {
			port = chaos.DefaultHTTPChaosPort
		}
		spec["port"] = port
		if len(f.Paths) > 0 {
			spec["path"] = f.Paths[0] + "*"
		}
		if f.Type == chaos.FaultHTTPDelay {
			spec["delay"] = ms(time.Duration(f.Delay))
		} else {
			spec["target"] = "Response"
			spec["replace"] = map[string]any{"code": int64(f.Status)}
		}
		// No per-request share: percent is 100 (a share is refused when
		// the experiment loads; a revert never depends on it).
	case chaos.FaultProcessStop:
		kind = "PodChaos"
		spec["action"] = "pod-kill"
		delete(spec, "duration") // a kill is instantaneous; the pod's controller recreates it
	case chaos.FaultCPUStress:
		kind = "StressChaos"
		spec["stressors"] = map[string]any{"cpu": map[string]any{"workers": int64(max(f.Workers, 1)), "load": int64(f.CPUPercent)}}
	case chaos.FaultMemoryStress:
		kind = "StressChaos"
		n, err := chaos.MemoryStressBytes(f)
		if err != nil {
			return nil, fmt.Errorf("fault %s: %w", f.Name, err)
		}
		spec["stressors"] = map[string]any{"memory": map[string]any{"workers": int64(1), "size": memorySize(n)}}
	default:
		return nil, fmt.Errorf("fault %s: Chaos Mesh cannot express %s", f.Name, f.Type)
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": Group + "/" + Version,
		"kind":       kind,
		"metadata": map[string]any{
			"name":        Name(id),
			"namespace":   k.Namespace,
			"labels":      map[string]any{"app.kubernetes.io/managed-by": "sred", "sre.rootuip.io/chaos-fault": Name(id)},
			"annotations": map[string]any{"sre.rootuip.io/fault-id": id, "sre.rootuip.io/fault": f.Name},
		},
		"spec": spec,
	}}
	return u, nil
}

// Driver creates and deletes Chaos Mesh resources.
type Driver struct {
	Client dynamic.Interface
	// MaxDuration bounds every resource (spec.duration); default 1h.
	MaxDuration time.Duration
	// InjectTimeout, when set, makes Inject watch the resource until Chaos
	// Mesh reports it injected (status condition AllInjected True) and fail
	// when it does not within that time (the runner then rolls back).
	InjectTimeout time.Duration
	// Poll is how often the resource's status is read (default 1s).
	Poll time.Duration
	// Clock times InjectTimeout, Poll and the wait for a deletion (the
	// wall clock when nil).
	Clock clock.Timer
}

// timer returns the driver's clock, or the wall clock.
func (d *Driver) timer() clock.Timer {
	if d.Clock == nil {
		return clock.Real{}
	}
	return d.Clock
}

type state struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// Inject implements chaos.Driver.
func (d *Driver) Inject(ctx context.Context, id string, f chaos.Fault) (json.RawMessage, error) {
	md := d.MaxDuration
	if md <= 0 {
		md = time.Hour
	}
	// The run's own bound (chaos.WithLifetime): a resource whose sred died
	// ends soon after the run's planned end, not at max_duration.
	if l, ok := chaos.Lifetime(ctx); ok && l < md {
		md = max(l.Round(time.Second), time.Second)
	}
	pods := 1
	if n, ok := chaos.Instances(ctx); ok {
		pods = n
	}
	u, err := Manifest(id, f, md, pods)
	if err != nil {
		return nil, err
	}
	st, _ := json.Marshal(state{Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()})
	res := d.Client.Resource(GVR(u.GetKind())).Namespace(u.GetNamespace())
	if _, err := res.Create(ctx, u, metav1.CreateOptions{FieldManager: "sred"}); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			return st, fmt.Errorf("create %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
	}
	// Watch it appear: the API server has it; then, with InjectTimeout,
	// until Chaos Mesh's controller reports the fault injected.
	tm := d.timer()
	var deadline time.Time
	if d.InjectTimeout > 0 {
		deadline = tm.Now().Add(d.InjectTimeout)
	}
	poll := d.Poll
	if poll <= 0 {
		poll = time.Second
	}
	for {
		got, err := res.Get(ctx, u.GetName(), metav1.GetOptions{})
		if err != nil {
			return st, fmt.Errorf("read back %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
		if deadline.IsZero() {
			return st, nil
		}
		conds := Conditions(got.Object)
		if conds["AllInjected"] == "True" {
			return st, nil
		}
		if tm.Now().After(deadline) {
			return st, fmt.Errorf("%s %s/%s: Chaos Mesh did not report AllInjected within %v (conditions %v)",
				u.GetKind(), u.GetNamespace(), u.GetName(), d.InjectTimeout, conds)
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-tm.After(poll):
		}
	}
}

// Conditions returns the status conditions of a Chaos Mesh resource, type
// to status ("True", "False", "Unknown").
func Conditions(obj map[string]any) map[string]string {
	out := map[string]string{}
	cs, _, _ := unstructured.NestedSlice(obj, "status", "conditions")
	for _, c := range cs {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		t, _ := m["type"].(string)
		v, _ := m["status"].(string)
		if t != "" {
			out[t] = v
		}
	}
	return out
}

// Revert implements chaos.Driver: delete the resource (Chaos Mesh recovers
// the pods) and wait until it is gone.
func (d *Driver) Revert(ctx context.Context, id string, f chaos.Fault, raw json.RawMessage) error {
	var st state
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &st); err != nil {
			return fmt.Errorf("fault state: %w", err)
		}
	}
	if st.Name == "" { // journaled, crash before Inject returned: rebuild from the spec
		u, err := Manifest(id, f, time.Hour, 1)
		if err != nil {
			return nil // never creatable, so never created
		}
		st = state{Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
	}
	res := d.Client.Resource(GVR(st.Kind)).Namespace(st.Namespace)
	err := res.Delete(ctx, st.Name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete %s %s/%s: %w", st.Kind, st.Namespace, st.Name, err)
	}
	tm := d.timer()
	deadline := tm.Now().Add(30 * time.Second)
	for {
		_, err := res.Get(ctx, st.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if tm.Now().After(deadline) {
			return fmt.Errorf("%s %s/%s still present 30s after deletion (finalizers?)", st.Kind, st.Namespace, st.Name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tm.After(200 * time.Millisecond):
		}
	}
}

// memorySize writes n bytes as Chaos Mesh reads a size (its webhook checks
// it with go-units' FromHumanSize, its memStress reads it with go-humanize's
// ParseBytes, where KiB, MiB and GiB are binary and B plain bytes): in the
// largest binary unit dividing it, else in bytes. The size as written in
// the experiment may hold spaces or a sign that ParseSize accepts and the
// webhook refuses (" 256MiB", "256\tMiB").
func memorySize(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}
