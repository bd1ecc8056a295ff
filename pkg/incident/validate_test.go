package incident_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestActionLimits calls every action with free text over its limit, as
// any caller may (the API, the console, chat commands, runbooks): each
// refuses it with a *ValidationError naming the field and changes nothing;
// at the limit each is accepted.
func TestActionLimits(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		id := f.open(t, "g1", "checkout", "critical")
		long := func(n int) string { return strings.Repeat("é", n) }
		ptr := func(s string) *string { return &s }
		item, err := f.svc.AddActionItem(ctx, id, "alice", incident.ActionItem{Title: "Alert on lag"})
		require.NoError(t, err)

		cases := []struct {
			name  string
			call  func() error
			field string
			err   string
		}{
			{"actor", func() error { _, err := f.svc.Acknowledge(ctx, id, long(201)); return err }, "actor", `"actor" longer than 200 characters`},
			{"empty actor", func() error { _, err := f.svc.Acknowledge(ctx, id, " "); return err }, "actor", "actor must not be empty"},
			{"actor of two lines", func() error { _, err := f.svc.Acknowledge(ctx, id, "a\nb"); return err }, "actor", `"actor" must be one line`},
			{"investigate assignee", func() error { _, err := f.svc.Investigate(ctx, id, "alice", long(201)); return err }, "assignee", `"assignee" longer than 200 characters`},
			{"assign assignee", func() error { _, err := f.svc.Assign(ctx, id, "alice", long(201)); return err }, "assignee", `"assignee" longer than 200 characters`},
			{"empty assignee", func() error { _, err := f.svc.Assign(ctx, id, "alice", ""); return err }, "assignee", "assignee must not be empty"},
			{"note", func() error { _, err := f.svc.AddNote(ctx, id, "alice", long(25001)); return err }, "text", `"text" longer than 25000 characters`},
			{"NUL note", func() error { _, err := f.svc.AddNote(ctx, id, "alice", "a\x00b"); return err }, "text", `"text": NUL byte at offset 1`},
			{"invalid UTF-8 note", func() error { _, err := f.svc.AddNote(ctx, id, "alice", "a\xffb"); return err }, "text", `"text": invalid UTF-8`},
			{"empty note", func() error { _, err := f.svc.AddNote(ctx, id, "alice", " "); return err }, "text", "note must not be empty"},
			{"resolution note", func() error { _, err := f.svc.Resolve(ctx, id, "alice", long(25001)); return err }, "note", `"note" longer than 25000 characters`},
			{"impact", func() error { _, err := f.svc.SetImpact(ctx, id, "alice", long(10001)); return err }, "impact", `"impact" longer than 10000 characters`},
			{"snooze actor", func() error { _, err := f.svc.Snooze(ctx, id, long(201), incident.MinSnooze); return err }, "actor", `"actor" longer than 200 characters`},
			{"status update impact", func() error {
				_, err := f.svc.PostStatusUpdate(ctx, id, incident.StatusUpdate{Actor: "alice", Impact: strings.Repeat("A", 100000)})
				return err
			}, "impact", `"impact" longer than 10000 characters`},
			{"status update actions", func() error {
				_, err := f.svc.PostStatusUpdate(ctx, id, incident.StatusUpdate{Actor: "alice", Actions: long(10001)})
				return err
			}, "actions", `"actions" longer than 10000 characters`},
			{"status update public message", func() error {
				_, err := f.svc.PostStatusUpdate(ctx, id, incident.StatusUpdate{Actor: "alice", Public: true, PublicMessage: long(10001)})
				return err
			}, "public_message", `"public_message" longer than 10000 characters`},
			{"status update status page", func() error {
				_, err := f.svc.PostStatusUpdate(ctx, id, incident.StatusUpdate{Actor: "alice", StatusPage: "https://" + strings.Repeat("a", 2041)})
				return err
			}, "status_page", `"status_page" longer than 2048 characters`},
			{"status update actor", func() error {
				_, err := f.svc.PostStatusUpdate(ctx, id, incident.StatusUpdate{Actor: long(201)})
				return err
			}, "actor", `"actor" longer than 200 characters`},
			{"action item title", func() error {
				_, err := f.svc.AddActionItem(ctx, id, "alice", incident.ActionItem{Title: long(301)})
				return err
			}, "title", `"title" longer than 300 characters`},
			{"action item owner", func() error {
				_, err := f.svc.AddActionItem(ctx, id, "alice", incident.ActionItem{Title: "t", Owner: long(201)})
				return err
			}, "owner", `"owner" longer than 200 characters`},
			{"action item new title", func() error {
				_, err := f.svc.UpdateActionItem(ctx, id, item.ID, "alice", incident.ActionItemUpdate{Title: ptr(long(301))})
				return err
			}, "title", `"title" longer than 300 characters`},
			{"action item new owner", func() error {
				_, err := f.svc.UpdateActionItem(ctx, id, item.ID, "alice", incident.ActionItemUpdate{Owner: ptr(long(201))})
				return err
			}, "owner", `"owner" longer than 200 characters`},
			{"split actor", func() error { _, err := f.svc.Split(ctx, id, "g1", long(201)); return err }, "actor", `"actor" longer than 200 characters`},
			{"merge actor", func() error { _, err := f.svc.Merge(ctx, id, "INC-1999-0001", long(201)); return err }, "actor", `"actor" longer than 200 characters`},
			{"manual incident actor", func() error {
				_, err := f.svc.Create(ctx, incident.ManualIncident{Title: "t", Service: "s", Severity: incident.SeverityLow, Actor: long(201)})
				return err
			}, "actor", `"actor" longer than 200 characters`},
			{"manual incident title", func() error {
				_, err := f.svc.Create(ctx, incident.ManualIncident{Title: long(301), Service: "s", Severity: incident.SeverityLow, Actor: "alice"})
				return err
			}, "title", `"title" longer than 300 characters`},
		}
		for _, c := range cases {
			err := c.call()
			require.Error(t, err, c.name)
			require.True(t, errors.Is(err, incident.ErrInvalid), "%s: %v is not a validation error", c.name, err)
			var ve *incident.ValidationError
			require.True(t, errors.As(err, &ve), c.name)
			require.Equal(t, c.field, ve.Field, c.name)
			require.Equal(t, c.err, err.Error(), c.name)
		}

		inc, err := f.svc.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, incident.StatusTriggered, inc.Status, "refused actions changed nothing")
		require.Empty(t, inc.Assignee)
		require.Empty(t, inc.Impact)
		tl, err := f.svc.Timeline(ctx, id)
		require.NoError(t, err)
		require.Len(t, tl, 3, "created, alert fired, action item added: nothing else recorded")
		page, err := f.svc.List(ctx, incident.Filter{})
		require.NoError(t, err)
		require.Equal(t, 1, page.Total, "no manual incident opened")

		// At the limits, accepted.
		_, err = f.svc.Investigate(ctx, id, long(200), long(200))
		require.NoError(t, err)
		_, err = f.svc.AddNote(ctx, id, "alice", long(25000))
		require.NoError(t, err)
		_, err = f.svc.PostStatusUpdate(ctx, id, incident.StatusUpdate{Actor: "alice", Impact: long(10000), Actions: long(10000),
			Public: true, PublicMessage: long(10000), StatusPage: "https://" + strings.Repeat("a", 2040)})
		require.NoError(t, err)
		_, err = f.svc.UpdateActionItem(ctx, id, item.ID, "alice", incident.ActionItemUpdate{Title: ptr(long(300)), Owner: ptr(long(200))})
		require.NoError(t, err)
		_, err = f.svc.Resolve(ctx, id, "alice", long(25000))
		require.NoError(t, err)
		inc, err = f.svc.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, long(200), inc.Assignee)
		require.Equal(t, long(10000), inc.Impact)
		require.Equal(t, incident.StatusResolved, inc.Status)
	})
}
