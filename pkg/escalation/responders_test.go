package escalation_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/escalation"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// NotifyResponders reaches the users an escalation paged and level 0's
// current targets, on level 0's channels or the ones named, once per key;
// a real Slack-compatible webhook server receives the chat message.
func TestNotifyResponders(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		sms, push, email := newSink(t), newSink(t), newSink(t)
		var (
			mu    sync.Mutex
			texts []string
		)
		chat := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			var p struct {
				Blocks []struct {
					Text struct{ Text string } `json:"text"`
				} `json:"blocks"`
			}
			_ = json.Unmarshal(b, &p)
			mu.Lock()
			texts = append(texts, p.Blocks[0].Text.Text)
			mu.Unlock()
		}))
		defer chat.Close()
		ncfg := notifyConfig(t, sms, push, email, &sink{Server: chat})
		ncfg.Slack = &notify.SlackConfig{WebhookURL: commoncfg.Secret(chat.URL)}
		clock := clock.NewManual(t0)
		r := newRig(t, db, clock, escalationYAML, ncfg)
		id := r.open(t, "critical")

		// Before level 0 fired: its current on-call (bob), on its channels.
		writes := r.writes.Load()
		got, err := r.engine.NotifyResponders(ctx, escalation.Notice{IncidentID: id, Key: "run1/tell", From: "runbook api-restart", Message: "Restarting api"})
		require.NoError(t, err)
		require.Equal(t, writes+1, r.writes.Load(), "NotifyResponders goes through Options.Write")
		require.Equal(t, &escalation.Noticed{Users: []string{"bob"}, Channels: []string{"sms", "phone", "push"}, Skipped: []string{"email"}}, got)
		again, err := r.engine.NotifyResponders(ctx, escalation.Notice{IncidentID: id, Key: "run1/tell", Message: "Restarting api"})
		require.NoError(t, err)
		require.Equal(t, got, again)
		updates := func() []string {
			recs, err := notify.List(ctx, db, id)
			require.NoError(t, err)
			var out []string
			for _, rec := range recs {
				if rec.Event == escalation.EventUpdate {
					out = append(out, rec.User+"/"+rec.Channel)
				}
			}
			return out
		}
		require.Equal(t, []string{"bob/sms", "bob/phone", "bob/push"}, updates(), "the same key enqueues nothing more")

		// After level 1 paged carol: both, on the chat channel named.
		r.tick(t)
		clock.Advance(15 * time.Minute)
		r.tick(t)
		got, err = r.engine.NotifyResponders(ctx, escalation.Notice{IncidentID: id, Key: "run1/chat", From: "runbook api-restart", Message: "Cache flushed", Channels: []string{"chat"}})
		require.NoError(t, err)
		require.Equal(t, &escalation.Noticed{Users: []string{"bob", "carol"}, Channels: []string{"slack"}}, got)
		r.tick(t)
		mu.Lock()
		require.Equal(t, []string{"*[CRITICAL] Incident " + id + ": APIDown on api (runbook api-restart)*\nCache flushed\nPaging: <@UBOB>"}, texts)
		mu.Unlock()
		require.ElementsMatch(t, []string{"Notification (update) sent by sms to bob", "Notification (update) sent by phone to bob",
			"Notification (update) sent by push to bob", "Notification (update) sent by slack"}, r.timeline(t, id, "Notification (update)"))

		_, err = r.engine.NotifyResponders(ctx, escalation.Notice{IncidentID: id, Key: "x", Message: "m", Channels: []string{"fax"}})
		require.EqualError(t, err, `notify responders of `+id+`: unknown channel "fax" (want one of sms, phone, push, email, slack, webhook, pagerduty, teams, mattermost, or chat)`)
		_, err = r.engine.NotifyResponders(ctx, escalation.Notice{IncidentID: id, Key: "x", Message: "m", Channels: []string{"pagerduty", "email"}})
		require.ErrorIs(t, err, escalation.ErrNoResponders)
		require.EqualError(t, err, "notify responders of "+id+": no responders to notify (channels pagerduty, email not configured or without contacts)")
		_, err = r.engine.NotifyResponders(ctx, escalation.Notice{IncidentID: id, Message: "m"})
		require.EqualError(t, err, "notify responders: a key is required")

		// Without a policy, only named channels can be used.
		_, err = r.engine.NotifyResponders(ctx, escalation.Notice{IncidentID: "INC-0000-0404", Key: "x", Message: "m"})
		require.EqualError(t, err, "notify responders of INC-0000-0404: no responders to notify (no escalation policy covers it and no channel was named)")
		got, err = r.engine.NotifyResponders(ctx, escalation.Notice{IncidentID: "INC-0000-0404", Key: "x", Message: "m", Channels: []string{"slack"}})
		require.NoError(t, err)
		require.Equal(t, &escalation.Noticed{Channels: []string{"slack"}}, got)
	})
}
