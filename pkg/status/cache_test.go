package status_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/status"
	"github.com/rootuip/sre/pkg/store"
)

type answer struct {
	code int
	etag string
	cc   string
	body string
}

func getWith(t *testing.T, url, ifNoneMatch string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if ifNoneMatch != "" {
		req.Header.Set("If-None-Match", ifNoneMatch)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return answer{res.StatusCode, res.Header.Get("ETag"), res.Header.Get("Cache-Control"), string(b)}
}

// TestConditionalGet: the three public forms carry an entity tag; a
// request that has it is answered 304 without a body; a new public update
// changes it once the page is recomputed (at once after a change, as the
// incident hooks call Invalidate; at the latest after the cache's 15
// seconds without one); max-age counts down the snapshot's life, so that a
// cache in front keeps no answer longer than 15 seconds after it was
// computed.
func TestConditionalGet(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ path, ct string }{
		{"/status", "text/html"},
		{"/status.json", "application/json"},
		{"/status/feed.atom", "application/atom+xml"},
	} {
		t.Run(strings.TrimPrefix(tc.path, "/"), func(t *testing.T) {
			atFirstStart(t, func(t *testing.T, _ *store.DB, clk *clock.Manual, stored status.Stored, inc *incident.Service) {
				created, err := inc.Create(ctx, incident.ManualIncident{Title: "payments down", Service: "payments", Severity: incident.SeverityHigh, Actor: "rita"})
				require.NoError(t, err)
				post := func(msg string) {
					t.Helper()
					clk.Advance(time.Second)
					_, err := inc.PostStatusUpdate(ctx, created.ID, incident.StatusUpdate{Actor: "rita", Public: true, PublicMessage: msg})
					require.NoError(t, err)
				}
				post("First look.")
				cfg := status.Config{Components: []status.Component{{Name: "Shop", Services: []string{"payments"}}}}
				require.NoError(t, cfg.Validate())
				svc := status.New(cfg, status.Options{Incidents: inc, Clock: clk, Key: stored.Key, FirstStart: stored.FirstStart})
				mux := http.NewServeMux()
				status.NewHandler(svc, nil).Register(mux)
				srv := httptest.NewServer(mux)
				defer srv.Close()
				url := srv.URL + tc.path

				first := getWith(t, url, "")
				require.Equal(t, http.StatusOK, first.code)
				require.Contains(t, first.body, "First look.")
				require.Regexp(t, `^"[A-Za-z0-9_-]+"$`, first.etag)
				require.Equal(t, "public, max-age=15", first.cc)

				for _, inm := range []string{first.etag, "W/" + first.etag, `"other", ` + first.etag, "*"} {
					nm := getWith(t, url, inm)
					require.Equal(t, http.StatusNotModified, nm.code, inm)
					require.Empty(t, nm.body)
					require.Equal(t, first.etag, nm.etag)
					require.Equal(t, "public, max-age=15", nm.cc)
				}
				require.Equal(t, http.StatusOK, getWith(t, url, `"other"`).code)

				// The same snapshot 5 seconds later: 10 seconds left.
				clk.Advance(5 * time.Second)
				later := getWith(t, url, "")
				require.Equal(t, first.etag, later.etag)
				require.Equal(t, first.body, later.body)
				require.Equal(t, "public, max-age=10", later.cc)

				// A change the page is not told of shows when the snapshot ends.
				post("Second look.")
				require.NotContains(t, getWith(t, url, "").body, "Second look.")
				clk.Advance(9 * time.Second) // 15 s after the snapshot
				fresh := getWith(t, url, first.etag)
				require.Equal(t, http.StatusOK, fresh.code)
				require.Contains(t, fresh.body, "Second look.")
				require.NotEqual(t, first.etag, fresh.etag)
				require.Equal(t, "public, max-age=15", fresh.cc)

				// A change it is told of shows at once, with a new tag.
				post("Third look.")
				svc.Invalidate()
				third := getWith(t, url, fresh.etag)
				require.Equal(t, http.StatusOK, third.code)
				require.Contains(t, third.body, "Third look.")
				require.NotEqual(t, fresh.etag, third.etag)
			})
		})
	}
}

// timelineCounter counts the timeline entries the page reads of the
// incident service, whichever way it reads them.
type timelineCounter struct {
	*incident.Service
	entries atomic.Int64
}

func (c *timelineCounter) Timeline(ctx context.Context, id string) ([]incident.TimelineEntry, error) {
	tl, err := c.Service.Timeline(ctx, id)
	c.entries.Add(int64(len(tl)))
	return tl, err
}

func (c *timelineCounter) PublicStatusUpdates(ctx context.Context, ids []string, latest int) (map[string]incident.PublicUpdates, error) {
	m, err := c.Service.PublicStatusUpdates(ctx, ids, latest)
	for _, u := range m {
		c.entries.Add(int64(len(u.Latest)))
	}
	return m, err
}

// TestPageReadsOnlyWhatItShows: a page build read every shown incident's
// whole timeline (its alerts, notes, internal updates), though it shows
// the latest status.MaxPublicUpdates public updates. It now reads those
// alone.
func TestPageReadsOnlyWhatItShows(t *testing.T) {
	ctx := context.Background()
	atFirstStart(t, func(t *testing.T, _ *store.DB, clk *clock.Manual, stored status.Stored, inc *incident.Service) {
		const incidents, notes, public = 3, 60, status.MaxPublicUpdates + 3
		for i := range incidents {
			created, err := inc.Create(ctx, incident.ManualIncident{Title: "down", Service: "payments", Severity: incident.SeverityHigh, Actor: "rita"})
			require.NoError(t, err)
			for k := range notes {
				_, err = inc.AddNote(ctx, created.ID, "rita", fmt.Sprintf("note %d", k))
				require.NoError(t, err)
			}
			for k := range public {
				clk.Advance(time.Second)
				_, err = inc.PostStatusUpdate(ctx, created.ID, incident.StatusUpdate{Actor: "rita", Public: true, PublicMessage: fmt.Sprintf("incident %d update %d", i, k)})
				require.NoError(t, err)
				_, err = inc.PostStatusUpdate(ctx, created.ID, incident.StatusUpdate{Actor: "rita", Actions: "internal"})
				require.NoError(t, err)
			}
		}
		cfg := status.Config{Components: []status.Component{{Name: "Shop", Services: []string{"payments"}}}}
		require.NoError(t, cfg.Validate())
		counter := &timelineCounter{Service: inc}
		p, err := status.New(cfg, status.Options{Incidents: counter, Clock: clk, Key: stored.Key, FirstStart: stored.FirstStart}).Page(ctx)
		require.NoError(t, err)
		require.Len(t, p.Incidents, incidents)
		for _, pi := range p.Incidents {
			require.Len(t, pi.Updates, status.MaxPublicUpdates)
			require.Equal(t, 3, pi.EarlierUpdates)
		}
		require.Equal(t, int64(incidents*status.MaxPublicUpdates), counter.entries.Load(), "timeline entries read")
	})
}

// blockingList holds the first List's answer until released, and says when it is entered.
// once armed.
type blockingList struct {
	*incident.Service
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func newBlockingList(inc *incident.Service, armed bool) *blockingList {
	b := &blockingList{Service: inc, entered: make(chan struct{}), release: make(chan struct{})}
	b.armed.Store(armed)
	return b
}

func (b *blockingList) List(ctx context.Context, f incident.Filter) (*incident.Page, error) {
	p, err := b.Service.List(ctx, f)
	if b.armed.Load() {
		b.once.Do(func() {
			close(b.entered)
			<-b.release
		})
	}
	return p, err
}

// within waits for done, failing the test (after releasing b) when it
// does not come: what it waits for must not wait for a computation.
func within(t *testing.T, b *blockingList, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		close(b.release)
		t.Fatal(what + " waited for the page being computed")
	}
}

// TestInvalidateDoesNotWait: Invalidate, which incident changes call in
// their transaction, waited for the page being computed (one lock), so
// that a page build slowed by load held up the ingestion of alerts. It
// now returns at once; the page computed meanwhile is not served after.
func TestInvalidateDoesNotWait(t *testing.T) {
	ctx := context.Background()
	atFirstStart(t, func(t *testing.T, _ *store.DB, clk *clock.Manual, stored status.Stored, inc *incident.Service) {
		cfg := status.Config{Components: []status.Component{{Name: "Shop", Services: []string{"payments"}}}}
		require.NoError(t, cfg.Validate())
		bl := newBlockingList(inc, true)
		svc := status.New(cfg, status.Options{Incidents: bl, Clock: clk, Key: stored.Key, FirstStart: stored.FirstStart})
		computed := make(chan *status.Page)
		go func() {
			p, err := svc.Page(ctx)
			if err != nil {
				t.Error(err)
			}
			computed <- p
		}()
		<-bl.entered
		invalidated := make(chan struct{})
		go func() {
			svc.Invalidate()
			close(invalidated)
		}()
		within(t, bl, invalidated, "Invalidate")
		_, err := inc.Create(ctx, incident.ManualIncident{Title: "down", Service: "payments", Severity: incident.SeverityHigh, Actor: "rita"})
		require.NoError(t, err)
		close(bl.release)
		require.Empty(t, (<-computed).Incidents, "computed before the incident")
		p, err := svc.Page(ctx)
		require.NoError(t, err)
		require.Len(t, p.Incidents, 1, "the page computed during the change is not served after it")
	})
}

// TestDailySLIOncePerTTL: every page build asked Prometheus for each
// component's daily SLI, and incident changes (every alert delivery
// during an outage) drop the page: Prometheus was asked once per change.
// The answers are now kept for the cache's 15 seconds.
func TestDailySLIOncePerTTL(t *testing.T) {
	ctx := context.Background()
	atFirstStart(t, func(t *testing.T, _ *store.DB, clk *clock.Manual, stored status.Stored, inc *incident.Service) {
		cfg := status.Config{Components: []status.Component{{Name: "Shop", Services: []string{"payments"}}, {Name: "Search", Services: []string{"search"}}}}
		require.NoError(t, cfg.Validate())
		var calls atomic.Int64
		svc := status.New(cfg, status.Options{Incidents: inc, Clock: clk, Key: stored.Key, FirstStart: stored.FirstStart,
			DailySLI: func(context.Context, []string, time.Time, time.Time) (map[string]float64, error) {
				calls.Add(1)
				return map[string]float64{}, nil
			}})
		for _, step := range []struct {
			advance time.Duration
			calls   int64
		}{{0, 2}, {time.Second, 2}, {13 * time.Second, 2}, {time.Second, 4}} {
			clk.Advance(step.advance)
			svc.Invalidate() // an incident change
			_, err := svc.Page(ctx)
			require.NoError(t, err)
			require.Equal(t, step.calls, calls.Load(), "after %v more", step.advance)
		}
	})
}

// TestChangedPageServedWhileComputing: after a change, every request
// waited for the page to be computed again, and during an outage every
// alert delivery is a change: the visitors queued behind one computation
// after another. While one request computes it, the others are answered
// the page before the change, younger than the cache's 15 seconds; the
// next request after the computation gets the new one.
func TestChangedPageServedWhileComputing(t *testing.T) {
	ctx := context.Background()
	atFirstStart(t, func(t *testing.T, _ *store.DB, clk *clock.Manual, stored status.Stored, inc *incident.Service) {
		cfg := status.Config{Components: []status.Component{{Name: "Shop", Services: []string{"payments"}}}}
		require.NoError(t, cfg.Validate())
		bl := newBlockingList(inc, false)
		svc := status.New(cfg, status.Options{Incidents: bl, Clock: clk, Key: stored.Key, FirstStart: stored.FirstStart})
		before, err := svc.Page(ctx)
		require.NoError(t, err)
		require.Empty(t, before.Incidents)

		_, err = inc.Create(ctx, incident.ManualIncident{Title: "down", Service: "payments", Severity: incident.SeverityHigh, Actor: "rita"})
		require.NoError(t, err)
		clk.Advance(14 * time.Second)
		svc.Invalidate()
		bl.armed.Store(true)
		computed := make(chan *status.Page, 1)
		go func() {
			p, err := svc.Page(ctx)
			if err != nil {
				t.Error(err)
			}
			computed <- p
		}()
		<-bl.entered
		served := make(chan struct{})
		var during *status.Page
		go func() {
			defer close(served)
			during, err = svc.Page(ctx)
		}()
		within(t, bl, served, "A request during the computation")
		require.NoError(t, err)
		require.Same(t, before, during, "the page before the change")
		close(bl.release)
		require.Len(t, (<-computed).Incidents, 1)
		after, err := svc.Page(ctx)
		require.NoError(t, err)
		require.Len(t, after.Incidents, 1)
	})
}

// TestETagStableWithoutChange: the page held the time of its computation
// to the nanosecond (updated_at, the footer, the feed's updated), so every
// recompute gave new bytes and a new entity tag, and a poller's
// If-None-Match was never answered 304. A recompute that shows the same
// keeps the time of the last change and the tag; a new public update
// changes both.
func TestETagStableWithoutChange(t *testing.T) {
	ctx := context.Background()
	for _, path := range []string{"/status", "/status.json", "/status/feed.atom"} {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			atFirstStart(t, func(t *testing.T, _ *store.DB, clk *clock.Manual, stored status.Stored, inc *incident.Service) {
				created, err := inc.Create(ctx, incident.ManualIncident{Title: "payments down", Service: "payments", Severity: incident.SeverityMedium, Actor: "rita"})
				require.NoError(t, err)
				_, err = inc.PostStatusUpdate(ctx, created.ID, incident.StatusUpdate{Actor: "rita", Public: true, PublicMessage: "First look."})
				require.NoError(t, err)
				cfg := status.Config{Components: []status.Component{{Name: "Shop", Services: []string{"payments"}}}}
				require.NoError(t, cfg.Validate())
				svc := status.New(cfg, status.Options{Incidents: inc, Clock: clk, Key: stored.Key, FirstStart: stored.FirstStart})
				mux := http.NewServeMux()
				status.NewHandler(svc, nil).Register(mux)
				srv := httptest.NewServer(mux)
				defer srv.Close()
				url := srv.URL + path

				clk.Advance(time.Minute) // past the instant of the first start: a day with data
				first := getWith(t, url, "")
				require.Equal(t, http.StatusOK, first.code)
				p, err := svc.Page(ctx)
				require.NoError(t, err)
				computed := p.UpdatedAt

				for _, recompute := range []func(){
					func() { clk.Advance(1500 * time.Millisecond); svc.Invalidate() },          // a change elsewhere
					func() { clk.Advance(15*time.Second + 123*time.Nanosecond) },               // the cache's end
					func() { clk.Advance(time.Minute + 7*time.Millisecond); svc.Invalidate() }, // both
				} {
					recompute()
					again := getWith(t, url, first.etag)
					require.Equal(t, http.StatusNotModified, again.code)
					require.Equal(t, first.etag, again.etag)
					p, err := svc.Page(ctx)
					require.NoError(t, err)
					require.True(t, p.UpdatedAt.Equal(computed), "updated_at %s, want %s", p.UpdatedAt, computed)
				}

				clk.Advance(time.Second)
				_, err = inc.PostStatusUpdate(ctx, created.ID, incident.StatusUpdate{Actor: "rita", Public: true, PublicMessage: "Fixed for good."})
				require.NoError(t, err)
				svc.Invalidate()
				changed := getWith(t, url, first.etag)
				require.Equal(t, http.StatusOK, changed.code)
				require.NotEqual(t, first.etag, changed.etag)
				require.Contains(t, changed.body, "Fixed for good.")
				p, err = svc.Page(ctx)
				require.NoError(t, err)
				require.True(t, p.UpdatedAt.Equal(clk.Now()), "updated_at %s, want %s", p.UpdatedAt, clk.Now())
			})
		})
	}
}
