package scaling

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/runbook"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/targetlock"
	"github.com/rootuip/sre/pkg/testutil"
)

// hot answers every range query with one series at 95 over the range.
type hot struct{}

func (hot) QueryRange(_ context.Context, _ string, r v1.Range, _ ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	var vals []model.SamplePair
	for t := r.Start; !t.After(r.End); t = t.Add(r.Step) {
		vals = append(vals, model.SamplePair{Timestamp: model.TimeFromUnixNano(t.UnixNano()), Value: 95})
	}
	return model.Matrix{{Metric: model.Metric{}, Values: vals}}, nil, nil, nil
}

// TestDecisionPathsShownToAdminsOnly: a scaling action that failed on a
// program that is not there is stored with the program's path in its
// detail; the decisions API shows a viewer the base name only, an admin
// the whole path.
func TestDecisionPathsShownToAdminsOnly(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{Migrations, targetlock.Migrations}, func(t *testing.T, db *store.DB) {
		const prog = "/nonexistent/sred-test/bin/scale"
		p := cpuPolicy(t, `[`+prog+`, "{{ .Vars.replicas }}"]`)
		act, err := runbook.NewActuator(runbook.DefaultConfig, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
		c := New(Options{DB: db, Prometheus: hot{}, Actuator: act, Clock: clock.NewManual(now), Registerer: prometheus.NewRegistry()})
		c.SetConfig(DefaultConfig, []*Policy{p})
		rec, err := c.Evaluate(context.Background(), p, now)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Result != ResultFailed || !strings.Contains(rec.Detail, prog) {
			t.Fatalf("record %+v: want a failed action naming %s", rec, prog)
		}
		mux := http.NewServeMux()
		c.Register(mux)
		get := func(role auth.Role) string {
			rr := httptest.NewRecorder()
			r := httptest.NewRequest("GET", "/api/v1/scaling/decisions", nil)
			mux.ServeHTTP(rr, r.WithContext(auth.NewContext(r.Context(), auth.Principal{Name: "u", Role: role})))
			b, _ := io.ReadAll(rr.Body)
			if rr.Code != http.StatusOK {
				t.Fatalf("as %s: %d %s", role, rr.Code, b)
			}
			return string(b)
		}
		if body := get(auth.RoleAdmin); !strings.Contains(body, prog) {
			t.Fatalf("admin: %s; want the whole path", body)
		}
		for _, role := range []auth.Role{auth.RoleViewer, auth.RoleResponder} {
			if body := get(role); strings.Contains(body, "/nonexistent/") || !strings.Contains(body, "fork/exec scale: no such file or directory") {
				t.Fatalf("%s: %s; want the base name only", role, body)
			}
		}
	})
}

// A backtest bound in days past what a duration holds is refused, naming
// the bound. Before, the days wrapped around: from=213504d replayed the
// last 25 minutes and answered 200. A negative duration (from=-6h, after
// now) is refused naming it too, not as "to must be after from".
func TestBacktestDaysOutOfRange(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{Migrations, targetlock.Migrations}, func(t *testing.T, db *store.DB) {
		p, srv := backtestServer(t, db, time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC))
		for _, tc := range []struct{ query, want string }{
			{"from=213504d", `"error":"time \"213504d\": want a duration of at most 106751d"`},
			{"from=2h&to=-213504d", `"error":"time \"-213504d\": want a duration of at most 106751d"`},
			// A negative duration names the value, not "to must be after from".
			{"from=-6h", `"error":"time \"-6h\": want a positive duration before now (6h, 2d), RFC 3339 (2026-12-03T09:00:00Z) or now"`},
			{"from=2h&to=-1d", `"error":"time \"-1d\": want a positive duration before now (6h, 2d), RFC 3339 (2026-12-03T09:00:00Z) or now"`},
		} {
			resp, err := http.Get(srv.URL + "/api/v1/scaling/backtest?policy=" + p.Name + "&" + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), tc.want) {
				t.Errorf("%s: %d %s, want 400 with %s", tc.query, resp.StatusCode, body, tc.want)
			}
		}
	})
}

// A backtest bound takes Prometheus' duration syntax, as every other
// duration of sred and srectl: 1w, 1d12h, 1y. Before, it was Go's with a
// bare day count added, and from=1w was a 400.
func TestBacktestPrometheusDurations(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		err  string
	}{
		{"now", now, ""},
		{"0", now, ""},
		{"6h", now.Add(-6 * time.Hour), ""},
		{"90m", now.Add(-90 * time.Minute), ""},
		{"2d", now.AddDate(0, 0, -2), ""},
		{"1w", now.AddDate(0, 0, -7), ""},
		{"1d12h", now.Add(-36 * time.Hour), ""},
		{"1h30m15s", now.Add(-(time.Hour + 30*time.Minute + 15*time.Second)), ""},
		{"2y", now.Add(-2 * 365 * 24 * time.Hour), ""},
		{"106751d", now.Add(-106751 * 24 * time.Hour), `time "106751d" is`},
		{"292y", time.Time{}, `time "292y" is`},
		{"293y", time.Time{}, `time "293y": want a duration of at most 106751d`},
		{"1y1y", time.Time{}, `time "1y1y": want RFC 3339 (2026-12-03T09:00:00Z), a duration before now (6h, 2d) or now`},
		{"12h1d", time.Time{}, `time "12h1d": want RFC 3339`},
		{"1.5h", time.Time{}, `time "1.5h": want RFC 3339`},
		{"-1w", time.Time{}, `time "-1w": want a positive duration before now (6h, 2d), RFC 3339 (2026-12-03T09:00:00Z) or now`},
		{"-", time.Time{}, `time "-": want RFC 3339`},
	} {
		got, err := ParseTime(tc.in, now)
		if tc.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
				t.Errorf("ParseTime(%q) = %v, %v; want an error starting %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	// Over the API: a week back at the policy's minute interval.
	testutil.Backends(t, [][]store.Migration{Migrations, targetlock.Migrations}, func(t *testing.T, db *store.DB) {
		p, srv := backtestServer(t, db, now)
		resp, err := http.Get(srv.URL + "/api/v1/scaling/backtest?policy=" + p.Name + "&from=1w&to=1d12h")
		if err != nil {
			t.Fatal(err)
		}
		var env struct{ Data BacktestResult }
		err = json.NewDecoder(resp.Body).Decode(&env)
		res := env.Data
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("from=1w&to=1d12h: %d (%v), want 200", resp.StatusCode, err)
		}
		if !res.From.Equal(now.AddDate(0, 0, -7)) || !res.To.Equal(now.Add(-36*time.Hour)) {
			t.Errorf("from=1w&to=1d12h: replayed %s to %s, want %s to %s", res.From, res.To, now.AddDate(0, 0, -7), now.Add(-36*time.Hour))
		}
	})
}

// cpuPolicy is the policy of service api scaling on CPU between 2 and 6
// instances through an exec action running command (a YAML flow list).
func cpuPolicy(t *testing.T, command string) *Policy {
	t.Helper()
	p, err := Parse([]byte(`service: api
target: {action: {exec: {command: `+command+`}}}
min_instances: 2
max_instances: 6
metric: {type: cpu}
interval: 1m
scale_up: {threshold: 80}
scale_down: {threshold: 30}
`), "api.yml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A backtest bound before 1970-01-02 or after 9999 is refused naming it,
// as the API's other time parameters: from=1960-01-01T00:00:00Z replayed
// the policy over 1960, where no series has a sample, and answered 200.
func TestBacktestTimeBounds(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{Migrations, targetlock.Migrations}, func(t *testing.T, db *store.DB) {
		p, srv := backtestServer(t, db, time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC))
		const want = `: want a time from 1970-01-02T00:00:00Z to 9999-12-31T23:59:59Z`
		for _, tc := range []struct {
			query string
			code  int
			err   string
		}{
			{"from=1960-01-01T00:00:00Z&to=1960-01-02T00:00:00Z", 400, `time "1960-01-01T00:00:00Z" is 1960-01-01T00:00:00Z` + want},
			{"from=21000d", 400, `time "21000d" is 1969-06-05T09:00:00Z` + want},
			{"from=2h&to=9999-12-31T23:59:59-01:00", 400, `time "9999-12-31T23:59:59-01:00" is 10000-01-01T00:59:59Z` + want},
			{"from=2026-12-03T07:00:00Z&to=2026-12-03T08:00:00Z", 200, ""},
		} {
			resp, err := http.Get(srv.URL + "/api/v1/scaling/backtest?policy=" + p.Name + "&" + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			var env struct{ Error string }
			err = json.NewDecoder(resp.Body).Decode(&env)
			resp.Body.Close()
			if err != nil || resp.StatusCode != tc.code || env.Error != tc.err {
				t.Errorf("%s: %d %q (%v), want %d %q", tc.query, resp.StatusCode, env.Error, err, tc.code, tc.err)
			}
		}
	})
}

// backtestServer serves the scaling API of a controller holding one CPU
// policy (its action /bin/true) on db, its clock stopped at now, until the
// test ends.
func backtestServer(t *testing.T, db *store.DB, now time.Time) (*Policy, *httptest.Server) {
	t.Helper()
	p := cpuPolicy(t, `[/bin/true]`)
	c := New(Options{DB: db, Prometheus: hot{}, Clock: clock.NewManual(now), Registerer: prometheus.NewRegistry()})
	c.SetConfig(DefaultConfig, []*Policy{p})
	mux := http.NewServeMux()
	c.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return p, srv
}
