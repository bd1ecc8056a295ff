package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/web"
)

func TestRedactPaths(t *testing.T) {
	cases := []struct{ in, want string }{
		{"open /etc/sred/runbooks/x.yml: permission denied", "open x.yml: permission denied"},
		{"fork/exec /usr/local/bin/foo: no such file or directory", "fork/exec foo: no such file or directory"},
		{`unable to open database file "/var/lib/sred/sred.db"`, `unable to open database file "sred.db"`},
		{"pid file /run/sred/chaos/cpu.pid.", "pid file cpu.pid."},
		{"template: /etc/sred/templates/page.tmpl:3:7: bad", "template: page.tmpl:3:7: bad"},
		{"a=/srv/a/b,c=/srv/c/d (in /x/y/z)", "a=b,c=d (in z)"},
		{"/etc/sred/sred.yml", "sred.yml"},
		{"lines\n/opt/app/bin/run failed", "lines\nrun failed"},
		{`Get "http://prom:9090/api/v1/query": dial tcp: refused`, `Get "http://prom:9090/api/v1/query": dial tcp: refused`},
		{"see /api/v1/runbooks/runs", "see /api/v1/runbooks/runs"},
		{"locked staging/api, process:/run/sred/app/app.pid", "locked staging/api, process:app.pid"},
		{"https://hooks.example/services/T0/B0 and file:///etc/x/y", "https://hooks.example/services/T0/B0 and file:///etc/x/y"},
		{"MemTotal 25276182528 bytes in /proc/meminfo", "MemTotal 25276182528 bytes in /proc/meminfo"},
		{"read /sys/fs/cgroup/cpu.max and /dev/null", "read /sys/fs/cgroup/cpu.max and /dev/null"},
		{"service=/tmp is not a path with a directory", "service=/tmp is not a path with a directory"},
		{"rate 5/m and a/b/c stay", "rate 5/m and a/b/c stay"},
		{"no slash at all", "no slash at all"},
		{"", ""},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			require.Equal(t, c.want, auth.RedactPaths(c.in))
		})
	}
}

func TestRedactByRole(t *testing.T) {
	const text = "open /etc/sred/runbooks/x.yml: permission denied"
	in := map[string]any{"argv": []any{"/usr/local/bin/restart", "--now"}, "env": map[string]any{"CONF": "/etc/app/app.conf"}}
	for _, c := range []struct {
		name  string
		ctx   context.Context
		whole bool
	}{
		{"admin", auth.NewContext(context.Background(), auth.Principal{Name: "adam", Role: auth.RoleAdmin}), true},
		{"responder", auth.NewContext(context.Background(), auth.Principal{Name: "rita", Role: auth.RoleResponder}), false},
		{"viewer", auth.NewContext(context.Background(), auth.Principal{Name: "vera", Role: auth.RoleViewer}), false},
		{"no principal", context.Background(), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := auth.RedactValue(c.ctx, in)
			if c.whole {
				require.Equal(t, text, auth.Redact(c.ctx, text))
				require.Equal(t, in, got)
				return
			}
			require.Equal(t, "open x.yml: permission denied", auth.Redact(c.ctx, text))
			require.Equal(t, map[string]any{"argv": []any{"restart", "--now"}, "env": map[string]any{"CONF": "app.conf"}}, got)
			require.Equal(t, "/usr/local/bin/restart", in["argv"].([]any)[0], "the value itself is not changed")
		})
	}
}

// TestView: View and ViewEach give an admin the value itself and the
// other roles a copy with the fields their cut names cut; the value is
// not changed. CutEach gives an empty slice for nil, CutStrings and
// CutMap keep nil, CutJSON keeps JSON it cannot decode.
func TestView(t *testing.T) {
	type entry struct{ Msg, Who string }
	type record struct {
		Reason  string
		Entries []entry
		Lines   []string
		Data    map[string]any
		Raw     json.RawMessage
	}
	cut := func(r *record) {
		auth.CutPaths(&r.Reason)
		r.Entries = auth.CutEach(r.Entries, func(e *entry) { auth.CutPaths(&e.Msg) })
		r.Lines, r.Data, r.Raw = auth.CutStrings(r.Lines), auth.CutMap(r.Data), auth.CutJSON(r.Raw)
	}
	in := &record{Reason: "open /etc/sred/x.yml: denied", Entries: []entry{{"ran /usr/bin/a", "/who/am/i"}}, Lines: []string{"/a/b c"},
		Data: map[string]any{"argv": []any{"/usr/bin/a"}}, Raw: json.RawMessage(`{"pid":"/run/app/app.pid"}`)}
	admin := auth.NewContext(context.Background(), auth.Principal{Name: "adam", Role: auth.RoleAdmin})
	viewer := auth.NewContext(context.Background(), auth.Principal{Name: "vera", Role: auth.RoleViewer})
	require.Same(t, in, auth.View(admin, in, cut))
	require.Nil(t, auth.View[record](viewer, nil, cut))
	got := auth.View(viewer, in, cut)
	require.Equal(t, &record{Reason: "open x.yml: denied", Entries: []entry{{"ran a", "/who/am/i"}}, Lines: []string{"b c"},
		Data: map[string]any{"argv": []any{"a"}}, Raw: json.RawMessage(`{"pid":"app.pid"}`)}, got)
	require.Equal(t, "open /etc/sred/x.yml: denied", in.Reason, "the value itself is not changed")
	require.Equal(t, "ran /usr/bin/a", in.Entries[0].Msg)
	require.Equal(t, "/a/b c", in.Lines[0])
	require.Equal(t, "/usr/bin/a", in.Data["argv"].([]any)[0])

	empty := auth.View(viewer, &record{Raw: json.RawMessage(`{"bad": /x/y`)}, cut)
	require.Equal(t, []entry{}, empty.Entries)
	require.Nil(t, empty.Lines)
	require.Nil(t, empty.Data)
	require.Equal(t, `{"bad": /x/y`, string(empty.Raw))

	list := []entry{{"ran /usr/bin/a", "b"}}
	require.Equal(t, list, auth.ViewEach(admin, list, func(e *entry) { auth.CutPaths(&e.Msg) }))
	require.Equal(t, []entry{{"ran a", "b"}}, auth.ViewEach(viewer, list, func(e *entry) { auth.CutPaths(&e.Msg) }))
	require.Equal(t, "ran /usr/bin/a", list[0].Msg)
}

// TestErrorAnswersRedacted: the error envelope of a request whose principal
// is not an admin (and of a public route) names the server's files by
// their base names; an admin's names them whole, and so does the no-auth
// mode's (an admin).
func TestErrorAnswersRedacted(t *testing.T) {
	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, _ *http.Request) {
		web.Error(w, http.StatusInternalServerError, "internal", errors.New("open /etc/sred/runbooks/x.yml: permission denied"))
	}
	for _, p := range []string{"GET /api/v1/incidents", "GET /-/healthy"} {
		mux.HandleFunc(p, fail)
	}
	srv, _ := recording(t, mux)
	noAuth := httptest.NewServer(auth.Middleware(auth.Options{NoAuth: true, Route: func(r *http.Request) string { _, p := mux.Handler(r); return p }}, mux))
	t.Cleanup(noAuth.Close)
	const whole, base = `"open /etc/sred/runbooks/x.yml: permission denied"`, `"open x.yml: permission denied"`
	cases := []struct {
		name string
		req  req
		want string
	}{
		{"viewer", req{method: "GET", path: "/api/v1/incidents", user: "vera", pass: "vera-pw"}, base},
		{"responder", req{method: "GET", path: "/api/v1/incidents", user: "rita", pass: "rita-pw"}, base},
		{"viewer token", req{method: "GET", path: "/api/v1/incidents", token: "tok-viewer"}, base},
		{"public route", req{method: "GET", path: "/-/healthy"}, base},
		{"admin", req{method: "GET", path: "/api/v1/incidents", user: "adam", pass: "adam-pw"}, whole},
		{"admin token", req{method: "GET", path: "/api/v1/incidents", token: "tok-admin"}, whole},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body, _ := do(t, srv, c.req)
			require.Equal(t, http.StatusInternalServerError, code, body)
			require.Contains(t, body, c.want)
		})
	}
	code, body, _ := do(t, noAuth, req{method: "GET", path: "/api/v1/incidents"})
	require.Equal(t, http.StatusInternalServerError, code, body)
	require.Contains(t, body, whole)
}
