package oncall

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/store"
	sretestutil "github.com/rootuip/sre/pkg/testutil"
)

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

func call(t *testing.T, srv *httptest.Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(b, &out), string(b))
	return resp.StatusCode, out
}

func TestAPI(t *testing.T) {
	sretestutil.Backends(t, [][]store.Migration{Migrations}, func(t *testing.T, db *store.DB) {
		cfg := loadGood(t)
		dir := NewDirectory(db, cfg)
		now := mustTime(t, "2026-03-28T10:00:00Z")
		mux := http.NewServeMux()
		NewAPI(dir, fixedClock(now), nil).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()

		code, out := call(t, srv, "GET", "/api/v1/oncall?service=api", "")
		require.Equal(t, 200, code)
		data := out["data"].([]any)
		require.Len(t, data, 2)
		require.Equal(t, "bob", data[0].(map[string]any)["user"])
		require.Equal(t, "primary", data[0].(map[string]any)["role"])
		require.Equal(t, "dave", data[1].(map[string]any)["user"])

		// A swap stored at runtime: carol covers bob from 10:00 to 14:00.
		code, out = call(t, srv, "PUT", "/api/v1/oncall/schedules/api-primary/overrides",
			`{"overrides":[{"user":"carol","start":"2026-03-28T10:00:00Z","end":"2026-03-28T14:00:00Z","reason":"swap"}],"by":"bob"}`)
		require.Equal(t, 200, code, out)
		code, out = call(t, srv, "GET", "/api/v1/oncall?schedule=api-primary&at=2026-03-28T11:00:00Z", "")
		require.Equal(t, 200, code)
		require.Equal(t, "carol", out["data"].([]any)[0].(map[string]any)["user"])

		// A list of shifts: primary and backup become overrides.
		code, out = call(t, srv, "PUT", "/api/oncall/schedule", `{"service":"api","schedule":{"timezone":"UTC","shifts":[
			{"start":"2026-03-28T12:00:00Z","end":"2026-03-28T17:00:00Z","primary":"alice","backup":"bob"}]}}`)
		require.Equal(t, 200, code, out)
		ents, err := dir.Who(t.Context(), "api", "", mustTime(t, "2026-03-28T13:00:00Z"), 0)
		require.NoError(t, err)
		require.Equal(t, "alice", ents[0].User)
		require.Equal(t, "bob", ents[1].User)
		// The 12-17 shift replaced only the overlapping part of the
		// 10-14 swap: carol keeps 10-12.
		u, err := dir.OnCall(t.Context(), nil, "api-primary", mustTime(t, "2026-03-28T11:00:00Z"))
		require.NoError(t, err)
		require.Equal(t, "carol", u)

		code, out = call(t, srv, "GET", "/api/v1/oncall/schedules/api-primary/overrides?from=2026-03-28T00:00:00Z&days=1", "")
		require.Equal(t, 200, code)
		ovs := out["data"].([]any)
		require.Len(t, ovs, 2)
		require.Equal(t, []string{"carol 2026-03-28T10:00:00Z 2026-03-28T12:00:00Z", "alice 2026-03-28T12:00:00Z 2026-03-28T17:00:00Z"}, overrideSpans(ovs))
		id := ovs[0].(map[string]any)["id"].(float64)
		code, _ = call(t, srv, "DELETE", "/api/v1/oncall/schedules/api-primary/overrides/"+jsonNum(id), "")
		require.Equal(t, 200, code)
		code, out = call(t, srv, "DELETE", "/api/v1/oncall/schedules/api-primary/overrides/"+jsonNum(id), "")
		require.Equal(t, 404, code)
		u, err = dir.OnCall(t.Context(), nil, "api-primary", mustTime(t, "2026-03-28T11:00:00Z"))
		require.NoError(t, err)
		require.Equal(t, "bob", u)

		// A window inside a longer override splits it in two.
		code, out = call(t, srv, "PUT", "/api/v1/oncall/schedules/api-backup/overrides",
			`{"overrides":[{"user":"carol","start":"2026-03-30T08:00:00Z","end":"2026-03-30T20:00:00Z"}]}`)
		require.Equal(t, 200, code, out)
		code, out = call(t, srv, "PUT", "/api/v1/oncall/schedules/api-backup/overrides",
			`{"from":"2026-03-30T11:00:00Z","to":"2026-03-30T13:00:00Z","overrides":[{"user":"alice","start":"2026-03-30T12:00:00Z","end":"2026-03-30T13:00:00Z"}]}`)
		require.Equal(t, 200, code, out)
		code, out = call(t, srv, "GET", "/api/v1/oncall/schedules/api-backup/overrides?from=2026-03-30T00:00:00Z&days=1", "")
		require.Equal(t, 200, code)
		require.Equal(t, []string{
			"carol 2026-03-30T08:00:00Z 2026-03-30T11:00:00Z",
			"carol 2026-03-30T13:00:00Z 2026-03-30T20:00:00Z",
			"alice 2026-03-30T12:00:00Z 2026-03-30T13:00:00Z",
		}, overrideSpans(out["data"].([]any)), "11-12 is cleared, 12-13 is alice's, the rest stays carol's")

		// The schedule's timezone applies to times without a UTC offset: on the
		// day Berlin moves to summer time, 09:00 is 07:00 UTC.
		before := map[string]string{}
		for _, at := range []string{"2026-03-29T06:59:00Z", "2026-03-29T16:00:00Z"} {
			before[at], err = dir.OnCall(t.Context(), nil, "api-primary", mustTime(t, at))
			require.NoError(t, err)
			require.NotEqual(t, "alice", before[at])
		}
		code, out = call(t, srv, "PUT", "/api/oncall/schedule", `{"service":"api","schedule":{"timezone":"Europe/Berlin","shifts":[
			{"start":"2026-03-29T09:00","end":"2026-03-29T18:00","primary":"alice"}]}}`)
		require.Equal(t, 200, code, out)
		for at, want := range map[string]string{"2026-03-29T06:59:00Z": before["2026-03-29T06:59:00Z"], "2026-03-29T07:00:00Z": "alice",
			"2026-03-29T15:59:00Z": "alice", "2026-03-29T16:00:00Z": before["2026-03-29T16:00:00Z"]} {
			u, err = dir.OnCall(t.Context(), nil, "api-primary", mustTime(t, at))
			require.NoError(t, err)
			require.Equal(t, want, u, at)
		}

		code, out = call(t, srv, "GET", "/api/v1/oncall/schedules/business-hours/gaps?from=2026-03-06T00:00:00Z&days=1", "")
		require.Equal(t, 200, code)
		require.Len(t, out["data"].([]any), 2)

		// Bad input is refused with a clear message and changes nothing.
		stored := func() []string {
			_, out := call(t, srv, "GET", "/api/v1/oncall/schedules/api-primary/overrides?from=2026-03-01T00:00:00Z&days=60", "")
			return overrideSpans(out["data"].([]any))
		}
		kept := stored()
		require.Equal(t, []string{"alice 2026-03-28T12:00:00Z 2026-03-28T17:00:00Z", "alice 2026-03-29T07:00:00Z 2026-03-29T16:00:00Z"}, kept)
		for _, tc := range []struct{ method, path, body, err string }{
			{"PUT", "/api/v1/oncall/schedules/api-primary/overrides", `{"overrides":[{"user":"mallory","start":"2026-03-28T10:00:00Z","end":"2026-03-28T11:00:00Z"}]}`, `override 0: override: unknown user "mallory"`},
			{"PUT", "/api/v1/oncall/schedules/api-primary/overrides", `{"overrides":[{"user":"carol","start":"2026-03-28T10:00:00Z","end":"2026-03-28T11:00:00Z","reason":"` + strings.Repeat("r", 501) + `"}]}`,
				`override 0: override for "carol": reason: at most 500 characters, got 501`},
			{"PUT", "/api/v1/oncall/schedules/api-primary/overrides", `{"overrides":[], "extra": 1}`, `invalid JSON body: json: unknown field "extra"`},
			{"PUT", "/api/v1/oncall/schedules/api-primary/overrides", `{"overrides":[]}`, `from and to are required when no overrides are given`},
			// Given, but zero: not "required".
			{"PUT", "/api/v1/oncall/schedules/api-primary/overrides", `{"from":"0001-01-01T00:00:00Z","to":"2026-03-28T13:00:00Z","overrides":[]}`,
				`from: 0001-01-01T00:00:00Z is out of range: the zero time (0001-01-01T00:00:00Z, to the millisecond) reads as no time; give a later one`},
			{"PUT", "/api/v1/oncall/schedules/api-primary/overrides", `{"from":"2026-03-28T12:00:00Z","to":"0001-01-01T00:00:00.0004Z","overrides":[]}`,
				`to: 0001-01-01T00:00:00.0004Z is out of range: the zero time (0001-01-01T00:00:00Z, to the millisecond) reads as no time; give a later one`},
			{"PUT", "/api/v1/oncall/schedules/api-primary/overrides", `{"from":"0001-01-01T00:00:00Z","overrides":[{"user":"alice","start":"2026-03-28T12:00:00Z","end":"2026-03-28T13:00:00Z"}]}`,
				`from: 0001-01-01T00:00:00Z is out of range: the zero time (0001-01-01T00:00:00Z, to the millisecond) reads as no time; give a later one`},
			{"PUT", "/api/v1/oncall/schedules/nope/overrides", `{"overrides":[]}`, `unknown schedule "nope"`},
			// A name the caller gave is cut in the answer, never echoed whole.
			{"GET", "/api/v1/oncall/schedules/" + strings.Repeat("n", 5000) + "/shifts", ``, `unknown schedule "` + strings.Repeat("n", 61) + `…"`},
			{"PUT", "/api/v1/oncall/schedules/" + strings.Repeat("é", 2500) + "/overrides", `{"overrides":[]}`, `unknown schedule "` + strings.Repeat("é", 30) + `…"`},
			{"GET", "/api/v1/oncall?schedule=" + strings.Repeat("n", 5000), ``, `unknown schedule "` + strings.Repeat("n", 61) + `…"`},
			{"GET", "/api/v1/oncall?service=" + strings.Repeat("s", 5000), ``, `unknown service "` + strings.Repeat("s", 61) + `…"`},
			{"DELETE", "/api/v1/oncall/schedules/api-primary/overrides/" + strings.Repeat("1x", 2500), ``, `invalid override id "` + strings.Repeat("1x", 30) + `1…"`},
			{"PUT", "/api/oncall/schedule", `{"service":"` + strings.Repeat("s", 5000) + `","schedule":{"shifts":[]}}`, `unknown service "` + strings.Repeat("s", 61) + `…"`},
			{"PUT", "/api/oncall/schedule", `{"service":"api","schedule":{"timezone":"` + strings.Repeat("z", 5000) + `","shifts":[]}}`, `unknown timezone "` + strings.Repeat("z", 61) + `…"`},
			{"PUT", "/api/oncall/schedule", `{"service":"api","schedule":{"shifts":[{"start":"` + strings.Repeat("t", 5000) + `","end":"2026-03-28T11:00:00Z","primary":"alice"}]}}`, `shift 0: start "` + strings.Repeat("t", 61) + `…": want RFC 3339 (2026-03-28T09:00:00Z) or a wall-clock time in schedule.timezone (2026-03-28T09:00)`},
			{"GET", "/api/v1/oncall/schedules/api-primary/overrides?from=2026-03-28T00:00:00Z&days=" + strings.Repeat("d", 5000), ``, `invalid days "` + strings.Repeat("d", 61) + `…": want an integer from 1 to 366`},
			{"GET", "/api/v1/oncall?days=" + strings.Repeat("d", 5000), ``, `invalid days "` + strings.Repeat("d", 61) + `…": want an integer from 0 to 366`},
			// A window of no days was refused as "to must be after from",
			// naming parameters the request did not give.
			{"GET", "/api/v1/oncall/schedules/api-primary/shifts?days=0", ``, `invalid days "0": want an integer from 1 to 366`},
			{"PUT", "/api/v1/oncall/schedules/api-primary/overrides", `{"from":"2026-03-28T13:00:00Z","to":"2026-03-28T12:00:00Z","overrides":[]}`, `to 2026-03-28T12:00:00Z is not after from 2026-03-28T13:00:00Z`},
			{"GET", "/api/v1/oncall/schedules/api-primary/gaps?from=2026-03-29T00:00:00Z&to=2026-03-28T00:00:00Z", ``, `to 2026-03-28T00:00:00Z is not after from 2026-03-29T00:00:00Z`},
			{"GET", "/api/v1/oncall?at=yesterday", ``, `at: cannot parse "yesterday" as an RFC 3339 time or a Unix timestamp`},
			{"GET", "/api/v1/oncall?at=NaN", ``, `at: NaN is not a finite number`},
			{"GET", "/api/v1/oncall?service=web", ``, `unknown service "web"`},
			{"PUT", "/api/oncall/schedule", `{"service":"api","schedule":{"shifts":[{"start":"2026-03-28T12:00:00Z","end":"2026-03-28T11:00:00Z","primary":"alice"}]}}`, `shift 0 primary: override for "alice": end 2026-03-28T11:00:00Z is not after start 2026-03-28T12:00:00Z`},
			{"PUT", "/api/oncall/schedule", `{"service":"api","schedule":{"shifts":[{"start":"2026-03-28T12:00","end":"2026-03-28T13:00","primary":"alice"}]}}`, `shift 0: start "2026-03-28T12:00" has no UTC offset: add one or set schedule.timezone`},
			{"PUT", "/api/oncall/schedule", `{"service":"api","schedule":{"timezone":"UTC","shifts":[{"start":"2026-03-28T12:00Z","end":"2026-03-28T13:00","primary":"alice"}]}}`, `shift 0: start "2026-03-28T12:00Z": want RFC 3339 (2026-03-28T09:00:00Z) or a wall-clock time in schedule.timezone (2026-03-28T09:00)`},
			{"PUT", "/api/oncall/schedule", `{"service":"api","schedule":{"timezone":"Mars/Olympus","shifts":[{"start":"2026-03-28T12:00","end":"2026-03-28T13:00","primary":"alice"}]}}`, `unknown timezone "Mars/Olympus"`},
			// The store keeps times to the millisecond: an override a
			// nanosecond long was stored ending where it started.
			{"PUT", "/api/v1/oncall/schedules/api-primary/overrides", `{"overrides":[{"user":"alice","start":"2026-03-28T12:00:00Z","end":"2026-03-28T12:00:00.000000001Z"}]}`, `override 0: override for "alice": end 2026-03-28T12:00:00Z is not after start 2026-03-28T12:00:00Z (times are kept to the millisecond)`},
			{"PUT", "/api/v1/oncall/schedules/api-primary/overrides", `{"overrides":[{"user":"alice","start":"2026-03-28T12:00:00.0001Z","end":"2026-03-28T12:00:00.0009Z"}]}`, `override 0: override for "alice": end 2026-03-28T12:00:00Z is not after start 2026-03-28T12:00:00Z (times are kept to the millisecond)`},
			{"PUT", "/api/oncall/schedule", `{"service":"api","schedule":{"shifts":[{"start":"2026-03-28T12:00:00.5Z","end":"2026-03-28T12:00:00.5000001Z","primary":"alice"}]}}`, `shift 0 primary: override for "alice": end 2026-03-28T12:00:00.5Z is not after start 2026-03-28T12:00:00.5Z (times are kept to the millisecond)`},
			{"PUT", "/api/v1/oncall/schedules/api-primary/overrides", `{"from":"2026-03-28T12:00:00Z","to":"2026-03-28T13:00:00Z","overrides":[{"user":"alice","start":"2026-03-28T12:30:00Z","end":"2026-03-28T14:00:00Z"}]}`, `override 0 (2026-03-28T12:30:00Z to 2026-03-28T14:00:00Z) is not within from 2026-03-28T12:00:00Z and to 2026-03-28T13:00:00Z`},
		} {
			code, out := call(t, srv, tc.method, tc.path, tc.body)
			require.GreaterOrEqual(t, code, 400, tc.path)
			require.Equal(t, tc.err, out["error"])
		}
		require.Equal(t, kept, stored(), "refused requests changed nothing")

		// api-primary starts after the 14-day horizon; business-hours covers 10 weekdays x 8h of 336h.
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(NewCollector(dir, fixedClock(mustTime(t, "2026-03-06T00:00:00Z"))))
		require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP sre_oncall_coverage_gap_seconds Seconds without anybody on call within the gap horizon from now.
# TYPE sre_oncall_coverage_gap_seconds gauge
sre_oncall_coverage_gap_seconds{schedule="api-backup"} 0
sre_oncall_coverage_gap_seconds{schedule="api-primary"} 1.2096e+06
sre_oncall_coverage_gap_seconds{schedule="business-hours"} 921600
`), "sre_oncall_coverage_gap_seconds"))
	})
}

// overrideSpans renders listed overrides as "user start end".
func overrideSpans(ovs []any) []string {
	var out []string
	for _, o := range ovs {
		m := o.(map[string]any)
		out = append(out, m["user"].(string)+" "+m["start"].(string)+" "+m["end"].(string))
	}
	return out
}

func jsonNum(f float64) string { return strconv.FormatInt(int64(f), 10) }

// Replacing a window changes nothing outside it, also where stored
// overrides overlap: a window inside a long override splits it, and the
// part after the window keeps the original's place below the overrides
// stored after it (bob's 16-17 inside alice's 08-20 stays bob's).
func TestReplaceWindowKeepsPrecedence(t *testing.T) {
	sretestutil.Backends(t, [][]store.Migration{Migrations}, func(t *testing.T, db *store.DB) {
		dir := NewDirectory(db, loadGood(t))
		now := mustTime(t, "2026-03-28T00:00:00Z")
		day := func(h int) time.Time { return mustTime(t, "2026-03-30T00:00:00Z").Add(time.Duration(h) * time.Hour) }
		require.NoError(t, dir.ReplaceOverrides(t.Context(), "api-primary", day(8), day(20), []*Override{
			{User: "alice", Start: day(8), End: day(20)},
			{User: "bob", Start: day(16), End: day(17)},
			{User: "dave", Start: day(19), End: day(20)},
		}, "test", now))
		who := func() map[int]string {
			out := map[int]string{}
			for _, h := range []int{9, 11, 13, 16, 18, 19} {
				u, err := dir.OnCall(t.Context(), nil, "api-primary", day(h))
				require.NoError(t, err)
				out[h] = u
			}
			return out
		}
		require.Equal(t, map[int]string{9: "alice", 11: "alice", 13: "alice", 16: "bob", 18: "alice", 19: "dave"}, who())
		require.NoError(t, dir.ReplaceOverrides(t.Context(), "api-primary", day(10), day(12), []*Override{
			{User: "carol", Start: day(10), End: day(12)},
		}, "test", now))
		require.Equal(t, map[int]string{9: "alice", 11: "carol", 13: "alice", 16: "bob", 18: "alice", 19: "dave"}, who())
		// A second split of the part keeps its place too: dave's 19-20 stays.
		require.NoError(t, dir.ReplaceOverrides(t.Context(), "api-primary", day(17), day(18), nil, "test", now))
		require.Equal(t, map[int]string{9: "alice", 11: "carol", 13: "alice", 16: "bob", 18: "alice", 19: "dave"}, who())
	})
}

// Shift times of PUT /api/oncall/schedule are refused outside the years 1 to 9999 UTC,
// as RFC 3339 times are, also as wall-clock times in the schedule's zone.
func TestParseShiftTime(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	for _, tc := range []struct {
		v       string
		loc     *time.Location
		want    string
		wantErr string
	}{
		{"2026-03-29T09:00", berlin, "2026-03-29T07:00:00Z", ""},
		// The spring-forward gap (02:00-03:00 in Berlin) does not exist.
		{"2026-03-29T02:30", berlin, "", `start "2026-03-29T02:30" does not exist in Europe/Berlin (the clocks skip it)`},
		{"2026-03-29T03:00", berlin, "2026-03-29T01:00:00Z", ""},
		{"2026-03-29T01:59", berlin, "2026-03-29T00:59:00Z", ""},
		{"2026-03-29T09:00:00Z", nil, "2026-03-29T09:00:00Z", ""},
		{"2026-03-29T09:00", nil, "", "has no UTC offset"},
		{"0000-01-01T00:00", berlin, "", "outside the years 1 to 9999 UTC"},
		{"9999-12-31T23:30", ny, "", "outside the years 1 to 9999 UTC"},
		{"0000-01-01T00:00:00Z", nil, "", "outside the years 1 to 9999 UTC"},
	} {
		got, err := parseShiftTime("start", tc.v, tc.loc)
		if tc.wantErr != "" {
			require.ErrorContains(t, err, tc.wantErr, tc.v)
			continue
		}
		require.NoError(t, err, tc.v)
		require.Equal(t, tc.want, got.UTC().Format(time.RFC3339), tc.v)
	}
}

// Two replacements of one window at once (two replicas, or a retried
// request) end as if one ran after the other: the second trims what the
// first stored. Without a lock the second read the window before the
// first committed, and both kept their overrides.
func TestConcurrentReplacementsOfAWindow(t *testing.T) {
	url := sretestutil.PostgresSchemaURL(t)
	ctx := context.Background()
	db, err := store.OpenPostgres(ctx, url, store.PostgresOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.Migrate(ctx, Migrations))
	dir := NewDirectory(db, loadGood(t))
	now := mustTime(t, "2026-03-28T00:00:00Z")
	day := func(h int) time.Time { return mustTime(t, "2026-03-30T00:00:00Z").Add(time.Duration(h) * time.Hour) }

	// The first replacement stops inside its transaction, its writes done.
	var first atomic.Bool
	inTx, release := make(chan int, 1), make(chan struct{})
	dir.OnChange(func(ctx context.Context, tx *sql.Tx, _ []string, _ time.Time) error {
		if first.CompareAndSwap(false, true) {
			pid := -1
			_ = tx.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid)
			inTx <- pid
			<-release
		}
		return nil
	})
	errA := make(chan error, 1)
	go func() {
		errA <- dir.ReplaceOverrides(ctx, "api-primary", day(8), day(12), []*Override{{User: "alice", Start: day(8), End: day(12)}}, "a", now)
	}()
	pidA := <-inTx
	require.Positive(t, pidA)
	errB := make(chan error, 1)
	go func() {
		errB <- dir.ReplaceOverrides(ctx, "api-primary", day(8), day(12), []*Override{{User: "bob", Start: day(9), End: day(10)}}, "b", now)
	}()
	// The second either waits for the first (its lock) or ends on its own.
	var doneB *error
	for blocked := 0; blocked == 0 && doneB == nil; {
		select {
		case err := <-errB:
			doneB = &err
		default:
			require.NoError(t, db.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`, pidA).Scan(&blocked))
		}
	}
	close(release)
	require.NoError(t, <-errA)
	if doneB == nil {
		err := <-errB
		doneB = &err
	}
	require.NoError(t, *doneB)
	ovs, err := dir.Overrides(ctx, nil, "api-primary", day(0), day(24))
	require.NoError(t, err)
	var got []string
	for _, o := range ovs {
		got = append(got, o.User+" "+o.Start.Format(time.RFC3339)+" "+o.End.Format(time.RFC3339))
	}
	require.Equal(t, []string{"bob 2026-03-30T09:00:00Z 2026-03-30T10:00:00Z"}, got, "the window says what the replacement that ran last says")
}

// "Who is on call" answers 404 for a service or schedule it does not know,
// and 500 when the stored overrides cannot be read: a store failure is not
// the caller's unknown name.
func TestWhoStoreFailure(t *testing.T) {
	sretestutil.Backends(t, [][]store.Migration{Migrations}, func(t *testing.T, db *store.DB) {
		dir := NewDirectory(db, loadGood(t))
		mux := http.NewServeMux()
		NewAPI(dir, fixedClock(mustTime(t, "2026-03-28T10:00:00Z")), nil).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		for _, tc := range []struct {
			path, typ string
			code      int
		}{
			{"/api/v1/oncall?service=nope", "not_found", 404},
			{"/api/v1/oncall?schedule=nope", "not_found", 404},
		} {
			code, out := call(t, srv, "GET", tc.path, "")
			require.Equal(t, tc.code, code, out)
			require.Equal(t, tc.typ, out["errorType"], out)
		}
		require.NoError(t, db.Close())
		for _, path := range []string{"/api/v1/oncall?service=api", "/api/v1/oncall?schedule=api-primary", "/api/v1/oncall"} {
			code, out := call(t, srv, "GET", path, "")
			require.Equal(t, 500, code, out)
			require.Equal(t, "internal", out["errorType"], out)
		}
	})
}

// Thousands of stored overrides (one PUT of up to 1 MiB holds about ten
// thousand): the shifts over them were computed asking At at each of the
// 2n change points, which copied every override each time, so that one
// GET of a schedule's shifts allocated gigabytes. The answer is the same
// as At's at each change point, overlapping overrides included (the one
// begun last wins).
func TestShiftsOfManyOverrides(t *testing.T) {
	sretestutil.Backends(t, [][]store.Migration{Migrations}, func(t *testing.T, db *store.DB) {
		dir := NewDirectory(db, loadGood(t))
		start := mustTime(t, "2026-03-28T10:00:00Z")
		mux := http.NewServeMux()
		NewAPI(dir, fixedClock(start), nil).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()

		const n = 5000
		users := []string{"alice", "bob", "carol"}
		var b strings.Builder
		b.WriteString(`{"overrides":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			s := start.Add(time.Duration(i) * time.Minute)
			// Three minutes each, begun a minute apart: each overlaps
			// the next two, and every third is as long again.
			e := s.Add(time.Duration(3+3*(i%3/2)) * time.Minute)
			fmt.Fprintf(&b, `{"user":%q,"start":%q,"end":%q}`, users[i%len(users)], s.Format(time.RFC3339), e.Format(time.RFC3339))
		}
		b.WriteString(`]}`)
		code, out := call(t, srv, "PUT", "/api/v1/oncall/schedules/api-primary/overrides", b.String())
		require.Equal(t, 200, code, out)

		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		code, out = call(t, srv, "GET", "/api/v1/oncall/schedules/api-primary/shifts?from=2026-03-28T00:00:00Z&days=30", "")
		runtime.ReadMemStats(&after)
		require.Equal(t, 200, code, out)
		// The request (the rows, the JSON both ways) takes some MiB; At's
		// copies took 2n x n pointers, over 200 MB.
		require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<20), "bytes allocated by one GET of the shifts over %d overrides", n)

		// The same shifts as At's answer at each change point.
		from, to := mustTime(t, "2026-03-28T00:00:00Z"), mustTime(t, "2026-04-27T00:00:00Z")
		ovs, err := dir.Overrides(t.Context(), nil, "api-primary", from, to)
		require.NoError(t, err)
		require.Len(t, ovs, n)
		s := dir.Config().Schedule("api-primary")
		var want []string
		for _, p := range append([]time.Time{from}, s.changePoints(from, to, ovs)...) {
			u, layer := s.At(p, ovs)
			if k := len(want); k > 0 && strings.HasPrefix(want[k-1], u+" ") {
				continue
			}
			want = append(want, u+" "+layer+" "+p.UTC().Format(time.RFC3339))
		}
		var got []string
		for _, x := range out["data"].([]any) {
			sh := x.(map[string]any)
			st, err := time.Parse(time.RFC3339, sh["start"].(string))
			require.NoError(t, err)
			got = append(got, sh["user"].(string)+" "+sh["layer"].(string)+" "+st.UTC().Format(time.RFC3339))
		}
		require.Equal(t, want, got)
		require.Greater(t, len(got), n/2)
	})
}
