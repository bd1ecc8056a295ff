package ui_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/chaos"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/targetlock"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/ui"
)

// anyQuery answers every PromQL query with one sample of 0: the steady
// state holds, no abort condition is true.
type anyQuery struct{}

func (anyQuery) Instant(context.Context, string, time.Time) (model.Vector, error) {
	return model.Vector{{Value: 0}}, nil
}

// noteDriver records what is injected and reverted.
type noteDriver struct{ log chan string }

func (d noteDriver) Inject(_ context.Context, id string, _ chaos.Fault) (json.RawMessage, error) {
	d.log <- "inject " + id
	return json.RawMessage(`{}`), nil
}

func (d noteDriver) Revert(_ context.Context, id string, _ chaos.Fault, _ json.RawMessage) error {
	d.log <- "revert " + id
	return nil
}

const gatedUIExperiment = `apiVersion: chaos.sre.rootuip.io/v1
kind: Experiment
name: api-cpu
description: CPU pressure on one API host
hypothesis:
  description: the API holds
  steadyState: [{name: up, promql: 'up'}]
target: {service: api, environment: staging, instances: 1, totalInstances: 4}
faults: [{name: cpu, type: cpu-stress, cpuPercent: 50}]
duration: 1m
approval: {role: admin}
`

// TestChaosPages: the chaos list shows a run waiting for approval with the
// Approve button; a responder may not approve (the experiment needs an
// admin); an admin's click lets the run go on; the run page shows the step
// timeline with the approval and links the reports.
func TestChaosPages(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations, chaos.Migrations, targetlock.Migrations}, func(t *testing.T, db *store.DB) {
		clk := clock.NewManual(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))
		d := noteDriver{log: make(chan string, 10)}
		svc := chaos.New(chaos.Options{DB: db, Clock: clk, Prom: anyQuery{}, Drivers: map[string]chaos.Driver{chaos.DriverStress: d}})
		e, err := chaos.Parse([]byte(gatedUIExperiment), "api-cpu.yml")
		require.NoError(t, err)
		require.NoError(t, svc.ApplyConfig(chaos.DefaultConfig, []*chaos.Experiment{e}))
		inc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, nil)
		require.NoError(t, err)

		as := auth.Principal{Name: "rita", Role: auth.RoleResponder}
		mux := http.NewServeMux()
		ui.New(ui.Sources{Incidents: inc, Chaos: svc}, ui.Options{}).Register(mux)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mux.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), as)))
		}))
		defer srv.Close()
		noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

		run, err := svc.Start(t.Context(), e, "alice")
		require.NoError(t, err)
		require.Equal(t, chaos.StatusWaiting, run.Status)

		code, body := get(t, srv.URL+"/chaos")
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, "Waiting for approval (1)")
		require.Contains(t, body, `action="/chaos/runs/`+run.ID+`/approve"`)
		require.Contains(t, body, "CPU pressure on one API host")

		resp, err := noRedirect.PostForm(srv.URL+"/chaos/runs/"+run.ID+"/approve", url.Values{"comment": {"looks fine"}})
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusForbidden, resp.StatusCode, "a responder may not approve what needs an admin")

		as = auth.Principal{Name: "ada", Role: auth.RoleAdmin}
		resp, err = noRedirect.PostForm(srv.URL+"/chaos/runs/"+run.ID+"/approve", url.Values{"comment": {"game day"}})
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		require.Equal(t, "/chaos/runs/"+run.ID+"?done=approved", resp.Header.Get("Location"))
		require.Equal(t, "inject "+run.ID+"-cpu", <-d.log, "the approved run injects its fault")

		// Let the run finish: advance the manual clock whenever it waits.
		done := make(chan struct{})
		go func() { svc.Wait(); close(done) }()
		deadline := time.After(60 * time.Second)
	drive:
		for {
			if n, ch := clk.Waiters(); n > 0 {
				clk.Advance(5 * time.Second)
			} else {
				select {
				case <-done:
					break drive
				case <-ch:
				case <-deadline:
					t.Fatal("the run did not finish")
				}
			}
		}
		require.Equal(t, "revert "+run.ID+"-cpu", <-d.log)

		code, body = get(t, srv.URL+"/chaos/runs/"+run.ID)
		require.Equal(t, http.StatusOK, code)
		for _, want := range []string{"Approved by ada (admin)", "game day", "<strong>approval</strong> · ok", "approved by ada (admin): game day",
			"<strong>monitor</strong> · ok", "<strong>report</strong> · ok", "succeeded",
			`href="/api/v1/chaos/runs/` + run.ID + `/report?format=markdown"`, `href="/api/v1/chaos/runs/` + run.ID + `/report"`} {
			require.Contains(t, body, want)
		}
		require.Less(t, strings.Index(body, "<strong>plan</strong>"), strings.Index(body, "<strong>approval</strong>"))
		require.Less(t, strings.Index(body, "<strong>approval</strong>"), strings.Index(body, "<strong>execute</strong>"))
		code, body = get(t, srv.URL+"/chaos")
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, "Waiting for approval (0)")
		require.Contains(t, body, `<a href="/chaos/runs/`+run.ID+`">`)

		code, _ = get(t, srv.URL+"/chaos/runs/chx-nope")
		require.Equal(t, http.StatusNotFound, code)
	})
}

// pidDriver fails every injection on a pid file that is not there.
type pidDriver struct{}

const missingPIDFile = "/run/sred-test/app/app.pid"

func (pidDriver) Inject(context.Context, string, chaos.Fault) (json.RawMessage, error) {
	return nil, errors.New("pid file " + missingPIDFile + ": open " + missingPIDFile + ": no such file or directory")
}

func (pidDriver) Revert(context.Context, string, chaos.Fault, json.RawMessage) error { return nil }

// TestChaosPagesPathsShownToAdminsOnly: a run whose fault failed on a
// server path (a pid file) is shown to a viewer, on the chaos list and
// the run's page, with the base name only; an admin reads it whole.
func TestChaosPagesPathsShownToAdminsOnly(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations, chaos.Migrations, targetlock.Migrations}, func(t *testing.T, db *store.DB) {
		clk := clock.NewManual(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))
		svc := chaos.New(chaos.Options{DB: db, Clock: clk, Prom: anyQuery{}, Drivers: map[string]chaos.Driver{chaos.DriverStress: pidDriver{}}})
		e, err := chaos.Parse([]byte(strings.Replace(gatedUIExperiment, "approval: {role: admin}\n", "", 1)), "api-cpu.yml")
		require.NoError(t, err)
		require.NoError(t, svc.ApplyConfig(chaos.DefaultConfig, []*chaos.Experiment{e}))
		inc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, nil)
		require.NoError(t, err)
		run, err := svc.Start(t.Context(), e, "ada")
		require.NoError(t, err)
		done := make(chan struct{})
		go func() { svc.Wait(); close(done) }()
		deadline := time.After(60 * time.Second)
	drive:
		for {
			if n, ch := clk.Waiters(); n > 0 {
				clk.Advance(5 * time.Second)
			} else {
				select {
				case <-done:
					break drive
				case <-ch:
				case <-deadline:
					t.Fatal("the run did not finish")
				}
			}
		}
		requirePathsShownToAdminsOnly(t, ui.Sources{Incidents: inc, Chaos: svc}, []string{"/chaos", "/chaos/runs/" + run.ID},
			missingPIDFile, "pid file app.pid: open app.pid: no such file or directory", "/run/sred-test")
	})
}
