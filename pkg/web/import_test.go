package web_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/web"
)

// TestImportBodyLimit: an import body over the API's bound is a 413 in
// the error envelope naming the bound (it was a 400 quoting net/http's
// "request body too large"); the lines before the bound stay imported.
func TestImportBodyLimit(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		src := newIncidentService(t, db)
		ctx := t.Context()
		for _, g := range []string{"a", "b"} {
			_, err := src.Ingest(ctx, notification(g, "checkout", "critical"))
			require.NoError(t, err)
		}
		var exp bytes.Buffer
		_, err := src.Export(ctx, time.Time{}, &exp)
		require.NoError(t, err)
		lines := strings.SplitAfter(exp.String(), "\n")
		require.GreaterOrEqual(t, len(lines), 2)

		// The same store: the first line is skipped as already there,
		// the second is cut by the bound.
		limit := int64(len(lines[0]) + len(lines[1])/2)
		mux := http.NewServeMux()
		(&web.IncidentsAPI{Service: src, MaxImportBytes: limit}).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()

		code, r := call(t, "POST", srv.URL+"/api/v1/incidents/import", exp.String())
		require.Equal(t, http.StatusRequestEntityTooLarge, code, r.Error)
		require.Equal(t, "error", r.Status)
		require.Equal(t, "bad_data", r.ErrorType)
		require.Equal(t, fmt.Sprintf("request body larger than %d bytes (imported 0, skipped 1 before it)", limit), r.Error)
	})
}

// importLine is one import line: an incident with only what the import
// requires.
func importLine(t *testing.T, id, groupKey string, created time.Time) string {
	t.Helper()
	b, err := json.Marshal(incident.ExportRecord{Incident: incident.Incident{
		ID: id, Title: "imported " + id, Service: "api", Severity: incident.SeverityLow, Status: incident.StatusResolved,
		GroupKey: groupKey, DetectedAt: created, CreatedAt: created, UpdatedAt: created}})
	require.NoError(t, err)
	return string(b) + "\n"
}

// TestImportRefusesAmbiguousLines: two lines of one import with one ID
// but two incidents were one imported and the other counted as skipped
// (as if it were there already) when both were in one batch, and a line
// with a stray "}" or "]" after its incident was imported. Each is now
// refused naming its line, the lines before it imported, nothing stored
// changed.
func TestImportRefusesAmbiguousLines(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc := newIncidentService(t, db)
		srv := incidentsServer(t, svc)
		created := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

		for _, tc := range []struct {
			name, body string
			code       int
			err        string
		}{{
			"one ID, two incidents",
			importLine(t, "IMP-1", "{}:one", created) + importLine(t, "IMP-1", "{}:two", created.Add(time.Hour)),
			http.StatusConflict,
			`import line 2 (IMP-1): incident IMP-1 is on line 1 as another incident (created 2026-03-01T09:00:00Z, group "{}:one"): an ID names one incident; give one of them another ID (imported 1, skipped 0 before it)`,
		}, {
			"a stray brace",
			strings.TrimSuffix(importLine(t, "IMP-2", "{}:brace", created), "\n") + "}\n",
			http.StatusBadRequest,
			`import line 1: data after the JSON value on the line (one incident a line) (imported 0, skipped 0 before it)`,
		}, {
			"a stray bracket",
			importLine(t, "IMP-3", "{}:three", created) + strings.TrimSuffix(importLine(t, "IMP-4", "{}:bracket", created), "\n") + "]\n",
			http.StatusBadRequest,
			`import line 2: data after the JSON value on the line (one incident a line) (imported 1, skipped 0 before it)`,
		}} {
			t.Run(tc.name, func(t *testing.T) {
				code, r := call(t, "POST", srv.URL+"/api/v1/incidents/import", tc.body)
				require.Equal(t, tc.code, code, r.Error)
				require.Equal(t, "error", r.Status)
				require.Equal(t, tc.err, r.Error)
			})
		}
		inc, err := svc.Get(t.Context(), "IMP-1")
		require.NoError(t, err)
		require.Equal(t, "{}:one", inc.GroupKey, "the first line's incident is kept")
		for _, id := range []string{"IMP-2", "IMP-4"} {
			_, err = svc.Get(t.Context(), id)
			require.ErrorIs(t, err, incident.ErrNotFound, id)
		}
		_, err = svc.Get(t.Context(), "IMP-3")
		require.NoError(t, err)

		// The same incident twice (and stored): skipped, as importing
		// again is.
		code, r := call(t, "POST", srv.URL+"/api/v1/incidents/import", importLine(t, "IMP-1", "{}:one", created)+importLine(t, "IMP-1", "{}:one", created))
		require.Equal(t, http.StatusOK, code, r.Error)
		require.Equal(t, map[string]any{"imported": 0.0, "skipped": 2.0}, r.Data)
	})
}

// TestImportRefusesAmbiguousKeys: an import line with a key given twice
// (encoding/json kept the last) or a key naming a field only without
// regard to case ("Incident" for incident, which encoding/json took for
// it) was imported; it is refused as the API's JSON bodies are, naming the
// line and the key's path, the lines before it imported and nothing else
// stored.
func TestImportRefusesAmbiguousKeys(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc := newIncidentService(t, db)
		srv := incidentsServer(t, svc)
		created := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		line := func(id string) string { return importLine(t, id, "{}:"+id, created) }

		for _, tc := range []struct {
			name, body, err string
			refused         string // the refused line's incident
		}{{
			"a label given twice",
			line("KEY-1") + editLine(t, line("KEY-2"), `"labels":null`, `"labels":{"service":"api","service":"payments"}`),
			`import line 2: incident.labels: key "service" given twice (imported 1, skipped 0 before it)`,
			"KEY-2",
		}, {
			"the incident given twice",
			line("KEY-3") + line("KEY-4") + `{"incident":` + strings.TrimSuffix(strings.TrimPrefix(line("KEY-5"), `{"incident":`), "}\n") +
				`,"incident":` + strings.TrimSuffix(strings.TrimPrefix(line("KEY-6"), `{"incident":`), "}\n") + "}\n",
			`import line 3: key "incident" given twice (imported 2, skipped 0 before it)`,
			"KEY-6",
		}, {
			"the incident in another case",
			line("KEY-7") + editLine(t, line("KEY-8"), `{"incident":`, `{"Incident":`),
			`import line 2: unknown field "Incident": the field is "incident" (field names are case-sensitive) (imported 1, skipped 0 before it)`,
			"KEY-8",
		}, {
			"a field of the incident in another case",
			editLine(t, line("KEY-9"), `"title":`, `"Title":`),
			`import line 1: incident: unknown field "Title": the field is "title" (field names are case-sensitive) (imported 0, skipped 0 before it)`,
			"KEY-9",
		}} {
			t.Run(tc.name, func(t *testing.T) {
				code, r := call(t, "POST", srv.URL+"/api/v1/incidents/import", tc.body)
				require.Equal(t, http.StatusBadRequest, code, r.Error)
				require.Equal(t, "error", r.Status)
				require.Equal(t, "bad_data", r.ErrorType)
				require.Equal(t, tc.err, r.Error)
				_, err := svc.Get(t.Context(), tc.refused)
				require.ErrorIs(t, err, incident.ErrNotFound, tc.refused)
			})
		}
		for _, id := range []string{"KEY-1", "KEY-3", "KEY-4", "KEY-7"} {
			inc, err := svc.Get(t.Context(), id)
			require.NoError(t, err, id)
			require.Equal(t, "imported "+id, inc.Title)
			require.Empty(t, inc.Labels, id)
		}
		_, err := svc.Get(t.Context(), "KEY-5")
		require.ErrorIs(t, err, incident.ErrNotFound, "KEY-5")
		page, err := svc.List(t.Context(), incident.Filter{})
		require.NoError(t, err)
		require.Equal(t, 4, page.Total, "only the lines before the refused ones")
	})
}

// TestImportTypeErrorsNameJSON: a value of the wrong type on an import
// line named the Go type it did not decode into ("want
// incident.Severity", "want time.Time", "want map[string]string"); it
// names the line, the field's path and the JSON it wants, as the API's
// bodies do, and nothing of the line is stored.
func TestImportTypeErrorsNameJSON(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc := newIncidentService(t, db)
		srv := incidentsServer(t, svc)
		created := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		line := func(id string) string { return importLine(t, id, "{}:"+id, created) }
		code, r := call(t, "POST", srv.URL+"/api/v1/incidents/import", line("TYPE-0"))
		require.Equal(t, http.StatusOK, code, r.Error)
		for _, tc := range []struct {
			name, line, err string
		}{
			{"severity", editLine(t, line("TYPE-1"), `"severity":"LOW"`, `"severity":3`),
				`import line 2: incident.severity: want a string, got a number (imported 0, skipped 1 before it)`},
			{"time", editLine(t, line("TYPE-1"), `"created_at":"2026-03-01T09:00:00Z"`, `"created_at":1772355600`),
				`import line 2: incident.created_at: want an RFC 3339 time, got a number (imported 0, skipped 1 before it)`},
			{"time text", editLine(t, line("TYPE-1"), `"created_at":"2026-03-01T09:00:00Z"`, `"created_at":"yesterday"`),
				`import line 2: incident.created_at: cannot parse "yesterday" as an RFC 3339 time (as 2026-12-05T10:00:00Z) (imported 0, skipped 1 before it)`},
			{"labels", editLine(t, line("TYPE-1"), `"labels":null`, `"labels":["api"]`),
				`import line 2: incident.labels: want an object, got a list (imported 0, skipped 1 before it)`},
			{"label value", editLine(t, line("TYPE-1"), `"labels":null`, `"labels":{"service":1}`),
				`import line 2: incident.labels.service: want a string, got a number (imported 0, skipped 1 before it)`},
			{"runbook urls", editLine(t, line("TYPE-1"), `"title":`, `"runbook_urls":"https://runbooks/x","title":`),
				`import line 2: incident.runbook_urls: want a list, got a string (imported 0, skipped 1 before it)`},
			{"in a list", editLine(t, line("TYPE-1"), `"timeline":null`, `"timeline":[{"time":"2026-03-01T09:00:00Z","kind":"note","actor":"rita","message":5}]`),
				`import line 2: timeline[0].message: want a string, got a number (imported 0, skipped 1 before it)`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, r := call(t, "POST", srv.URL+"/api/v1/incidents/import", line("TYPE-0")+tc.line)
				require.Equal(t, http.StatusBadRequest, code, r.Error)
				require.Equal(t, "bad_data", r.ErrorType)
				require.Equal(t, tc.err, r.Error)
				_, err := svc.Get(t.Context(), "TYPE-1")
				require.ErrorIs(t, err, incident.ErrNotFound)
			})
		}
		inc, err := svc.Get(t.Context(), "TYPE-0")
		require.NoError(t, err, "the line before the refused one is kept")
		require.Equal(t, "imported TYPE-0", inc.Title)
	})
}

// TestImportBoundsValues: an import line carried strings and collections
// of any size (a title of a megabyte, a label value longer than the
// webhook stores, a note longer than the API takes) and stored them. Each
// is refused naming the line, the field and the limit, as the API and the
// webhook bound them; nothing of the line is stored and the incident
// stored before keeps what it had. A larger webhook.limits takes larger
// values.
func TestImportBoundsValues(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc := newIncidentService(t, db)
		srv := incidentsServer(t, svc)
		created := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		record := func(id string, edit func(*incident.ExportRecord)) string {
			t.Helper()
			rec := incident.ExportRecord{Incident: incident.Incident{
				ID: id, Title: "imported " + id, Service: "api", Severity: incident.SeverityLow, Status: incident.StatusResolved,
				Labels: map[string]string{"service": "api"}, GroupKey: "{}:" + id, DetectedAt: created, CreatedAt: created, UpdatedAt: created},
				Alerts: []incident.ExportAlert{{GroupKey: "{}:" + id, Alert: incident.Alert{Fingerprint: "c0ffee", StartsAt: created, Status: "resolved",
					Labels: map[string]string{"alertname": "Down"}}, FirstSeenAt: created, UpdatedAt: created}},
				Timeline: []incident.ExportTimelineEntry{{Time: created, Kind: "note", Actor: "rita", Message: "looking"}},
				Links:    []incident.Link{{GroupKey: "{}:" + id, Service: "api", Reason: "opened", AttachedAt: created}},
				ActionItems: []incident.ExportActionItem{{Title: "add a probe", Owner: "rita", State: incident.ActionOpen,
					CreatedAt: created, UpdatedAt: created}},
			}
			if edit != nil {
				edit(&rec)
			}
			b, err := json.Marshal(rec)
			require.NoError(t, err)
			return string(b) + "\n"
		}
		// BND-0 is stored; each refused import carries it again, changed.
		code, r := call(t, "POST", srv.URL+"/api/v1/incidents/import", record("BND-0", nil))
		require.Equal(t, http.StatusOK, code, r.Error)

		x := strings.Repeat
		manyLabels := map[string]string{}
		for i := range 65 {
			manyLabels[fmt.Sprintf("l%02d", i)] = "v"
		}
		for _, tc := range []struct {
			name string
			edit func(*incident.ExportRecord)
			err  string
		}{
			{"title", func(r *incident.ExportRecord) { r.Incident.Title = x("t", 501) },
				`field incident.title: longer than 500 characters`},
			{"title in characters", func(r *incident.ExportRecord) { r.Incident.Title = x("é", 500) }, ""},
			{"service", func(r *incident.ExportRecord) { r.Incident.Service = x("s", 2049) },
				`field incident.service: longer than 2048 bytes (webhook.limits.max_label_value_bytes)`},
			{"label value", func(r *incident.ExportRecord) { r.Incident.Labels["service"] = x("v", 2049) },
				`field incident.labels["service"]: longer than 2048 bytes (webhook.limits.max_label_value_bytes)`},
			{"label name", func(r *incident.ExportRecord) { r.Incident.Labels[x("n", 257)] = "v" },
				`field incident.labels: label name "` + x("n", 61) + `…" longer than webhook.limits.max_label_name_bytes (256)`},
			{"labels", func(r *incident.ExportRecord) { r.Incident.Labels = manyLabels },
				`field incident.labels: 65 labels, more than webhook.limits.max_labels_per_alert (64)`},
			{"group key", func(r *incident.ExportRecord) { r.Incident.GroupKey = x("g", 1025) },
				`field incident.group_key: longer than 1024 bytes`},
			{"receiver", func(r *incident.ExportRecord) { r.Incident.Receiver = x("r", 2049) },
				`field incident.receiver: longer than 2048 bytes (webhook.limits.max_label_value_bytes)`},
			{"runbook url", func(r *incident.ExportRecord) {
				r.Incident.RunbookURLs = []string{"https://r/", "https://r/" + x("u", 16375)}
			},
				`field incident.runbook_urls[1]: longer than 16384 bytes (webhook.limits.max_annotation_value_bytes)`},
			{"assignee", func(r *incident.ExportRecord) { r.Incident.Assignee = x("a", 201) },
				`field incident.assignee: longer than 200 characters`},
			{"assignee lines", func(r *incident.ExportRecord) { r.Incident.Assignee = "rita\nbob" },
				`field incident.assignee: must be one line`},
			{"impact", func(r *incident.ExportRecord) { r.Incident.Impact = x("i", 10001) },
				`field incident.impact: longer than 10000 characters`},
			{"merged into", func(r *incident.ExportRecord) { r.Incident.MergedInto = "../x" },
				`field incident.merged_into: "../x" is not an incident ID`},
			{"merged into itself", func(r *incident.ExportRecord) { r.Incident.MergedInto = strings.ToLower(r.Incident.ID) },
				`field incident.merged_into: names the incident itself: an incident cannot be merged into itself`},
			{"alert fingerprint", func(r *incident.ExportRecord) { r.Alerts[0].Fingerprint = x("f", 65) },
				`field alerts[0].fingerprint: longer than 64 bytes`},
			{"alert label", func(r *incident.ExportRecord) { r.Alerts[0].Labels["alertname"] = x("v", 2049) },
				`field alerts[0].labels["alertname"]: longer than 2048 bytes (webhook.limits.max_label_value_bytes)`},
			{"alert annotation", func(r *incident.ExportRecord) { r.Alerts[0].Annotations = map[string]string{"summary": x("s", 16385)} },
				`field alerts[0].annotations["summary"]: longer than 16384 bytes (webhook.limits.max_annotation_value_bytes)`},
			{"alert generator url", func(r *incident.ExportRecord) { r.Alerts[0].GeneratorURL = x("u", 16385) },
				`field alerts[0].generator_url: longer than 16384 bytes (webhook.limits.max_annotation_value_bytes)`},
			{"alert group key", func(r *incident.ExportRecord) { r.Alerts[0].GroupKey = x("g", 1025) },
				`field alerts[0].group_key: longer than 1024 bytes`},
			{"group", func(r *incident.ExportRecord) { r.Groups = []incident.ExportGroup{{GroupKey: x("g", 1025)}} },
				`field groups[0].group_key: longer than 1024 bytes`},
			{"note", func(r *incident.ExportRecord) { r.Timeline[0].Message = x("n", 25001) },
				`field timeline[0].message: longer than 25000 characters`},
			{"timeline actor", func(r *incident.ExportRecord) { r.Timeline[0].Actor = x("a", 201) },
				`field timeline[0].actor: longer than 200 characters`},
			{"timeline kind", func(r *incident.ExportRecord) { r.Timeline[0].Kind = x("k", 201) },
				`field timeline[0].kind: longer than 200 characters`},
			{"link labels", func(r *incident.ExportRecord) { r.Links[0].Labels = manyLabels },
				`field links[0].labels: 65 labels, more than webhook.limits.max_labels_per_alert (64)`},
			{"link service", func(r *incident.ExportRecord) { r.Links[0].Service = x("s", 2049) },
				`field links[0].service: longer than 2048 bytes (webhook.limits.max_label_value_bytes)`},
			{"action item title", func(r *incident.ExportRecord) { r.ActionItems[0].Title = x("t", 301) },
				`field action_items[0].title: longer than 300 characters`},
			{"action item owner", func(r *incident.ExportRecord) { r.ActionItems[0].Owner = x("o", 201) },
				`field action_items[0].owner: longer than 200 characters`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				id := "BND-" + strings.ReplaceAll(tc.name, " ", "-")
				code, r := call(t, "POST", srv.URL+"/api/v1/incidents/import", record("BND-0", tc.edit)+record(id, tc.edit))
				if tc.err == "" {
					require.Equal(t, http.StatusOK, code, r.Error)
					_, err := svc.Get(t.Context(), id)
					require.NoError(t, err)
					return
				}
				require.Equal(t, http.StatusBadRequest, code, r.Error)
				require.Equal(t, "bad_data", r.ErrorType)
				require.Equal(t, "import line 1: incident BND-0: "+tc.err+" (imported 0, skipped 0 before it)", r.Error)
				_, err := svc.Get(t.Context(), id)
				require.ErrorIs(t, err, incident.ErrNotFound, "nothing after the refused line is read")
			})
		}
		// A merged_into naming an incident neither stored nor on a line of
		// the import.
		code, r = call(t, "POST", srv.URL+"/api/v1/incidents/import", record("BND-1", func(r *incident.ExportRecord) { r.Incident.MergedInto = "GONE-0" }))
		require.Equal(t, http.StatusBadRequest, code, r.Error)
		require.Equal(t, "bad_data", r.ErrorType)
		require.Equal(t, `import line 1 (BND-1): incident BND-1: field incident.merged_into: incident "GONE-0" is neither stored here nor on a line of the import: `+
			`import it too (an export from an earlier --since holds it), or clear merged_into (imported 0, skipped 0 before it)`, r.Error)
		_, err := svc.Get(t.Context(), "BND-1")
		require.ErrorIs(t, err, incident.ErrNotFound)
		inc, err := svc.Get(t.Context(), "BND-0")
		require.NoError(t, err)
		require.Equal(t, "imported BND-0", inc.Title)
		require.Equal(t, map[string]string{"service": "api"}, inc.Labels)
		tl, err := svc.Timeline(t.Context(), "BND-0")
		require.NoError(t, err)
		require.Len(t, tl, 1)
		require.Equal(t, "looking", tl[0].Message)

		// The importing sred's webhook.limits: a larger one takes larger
		// values.
		opts := incident.DefaultOptions()
		opts.WebhookLimits = limits.DefaultWebhook
		opts.WebhookLimits.MaxLabelValueBytes = 4096
		require.NoError(t, svc.SetOptions(opts))
		code, r = call(t, "POST", srv.URL+"/api/v1/incidents/import", record("BND-big", func(r *incident.ExportRecord) { r.Incident.Labels["service"] = x("v", 4096) }))
		require.Equal(t, http.StatusOK, code, r.Error)
		inc, err = svc.Get(t.Context(), "BND-big")
		require.NoError(t, err)
		require.Len(t, inc.Labels["service"], 4096)
	})
}

// editLine is import line l with its first old replaced by new; old must
// be in it.
func editLine(t *testing.T, l, old, new string) string {
	t.Helper()
	require.Contains(t, l, old)
	return strings.Replace(l, old, new, 1)
}
