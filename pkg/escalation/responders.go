package escalation

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/store"
)

// EventUpdate is the event of a message to an incident's responders that is
// not a page (for example a runbook's notify step).
const EventUpdate = "update"

// Notice is a message to the responders of an incident.
type Notice struct {
	IncidentID string
	// Key makes the notice idempotent: a second notice with the same key
	// enqueues nothing.
	Key string
	// From names the sender in the subject ("runbook api-restart").
	From    string
	Message string
	// Channels overrides the channels of level 0 of the incident's policy.
	Channels []string
}

// Noticed says who a notice went to.
type Noticed struct {
	Users    []string `json:"users,omitempty"`
	Channels []string `json:"channels,omitempty"`
	// Skipped are channels not configured in the notifications section.
	Skipped []string `json:"skipped,omitempty"`
}

// ErrNoResponders is returned by NotifyResponders when a notice has nobody
// to go to: no escalation policy covers the incident and no channel was named.
var ErrNoResponders = errors.New("no responders to notify")

// NotifyResponders writes n to the outbox for the responders of an
// incident: the users its escalation paged so far in the current epoch and
// whoever level 0 targets now (its users, the current on-call of its
// schedules, its teams), on the channels of level 0 or n.Channels. Chat and
// webhook channels get one message that mentions them; email, SMS, phone and
// push one message per user. PagerDuty is skipped: a notice is not a page.
// The notification sender delivers the messages with its retries. It runs
// through Options.Write, like EscalateNow.
func (e *Engine) NotifyResponders(ctx context.Context, n Notice) (*Noticed, error) {
	if n.Key == "" {
		return nil, errors.New("notify responders: a key is required")
	}
	var named []string
	for _, c := range n.Channels {
		ch, err := notify.NormalizeChannel(c)
		if err != nil {
			return nil, fmt.Errorf("notify responders of %s: %w", n.IncidentID, err)
		}
		if !slices.Contains(named, ch) {
			named = append(named, ch)
		}
	}
	out := &Noticed{}
	err := e.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		// A run again (runAgainIfRetryable) starts over.
		*out = Noticed{}
		channels := named
		now := e.clock.Now()
		st, err := e.load(ctx, tx, n.IncidentID)
		if err != nil {
			return err
		}
		var users []string
		if st != nil && st.state != StateNoPolicy && len(st.frozen.Levels) > 0 {
			rows, err := store.TxQueries(ctx, tx).QueryContext(ctx, `SELECT user_name FROM escalation_pages WHERE incident_id = $1 AND epoch = $2 ORDER BY paged_at, user_name`,
				n.IncidentID, st.epoch)
			if err != nil {
				return fmt.Errorf("responders of %s: %w", n.IncidentID, err)
			}
			for rows.Next() {
				var u string
				if err := rows.Scan(&u); err != nil {
					rows.Close()
					return fmt.Errorf("responders of %s: %w", n.IncidentID, err)
				}
				if !slices.Contains(users, u) {
					users = append(users, u)
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("responders of %s: %w", n.IncidentID, err)
			}
			l0, _, _, err := e.resolveTargets(ctx, tx, st, 0, st.frozen.Levels[0], now)
			if err != nil {
				return err
			}
			for _, u := range l0 {
				if !slices.Contains(users, u) {
					users = append(users, u)
				}
			}
			if len(channels) == 0 {
				channels = st.frozen.Levels[0].Channels
			}
		}
		if len(channels) == 0 {
			return fmt.Errorf("notify responders of %s: %w (no escalation policy covers it and no channel was named)", n.IncidentID, ErrNoResponders)
		}
		_, ncfg, ext := e.config()
		oc := e.dir.Config()
		subject := fmt.Sprintf("Incident %s", n.IncidentID)
		m := notify.Message{IncidentID: n.IncidentID, Event: EventUpdate, Body: n.Message, Time: now}
		if st != nil {
			m.Title, m.Service, m.Severity, m.Labels = st.snap.Title, st.snap.Service, st.snap.Severity, st.snap.Labels
			subject = fmt.Sprintf("[%s] Incident %s: %s", st.snap.Severity, n.IncidentID, st.snap.Title)
		}
		if n.From != "" {
			subject += " (" + n.From + ")"
		}
		m.Subject = subject
		if ext != "" {
			m.URL = ext + "/incidents/" + url.PathEscape(n.IncidentID)
		}
		out.Users = users
		base := "notice/" + n.IncidentID + "/" + n.Key
		for _, ch := range channels {
			if ch == notify.ChannelPagerDuty || !ncfg.Configured(ch) {
				out.Skipped = append(out.Skipped, ch)
				continue
			}
			if notify.PerUser(ch) {
				sent := false
				for _, u := range users {
					msg := m
					msg.Channel, msg.User, msg.To = ch, u, contact(oc.User(u), ch)
					if msg.To == "" {
						continue // the user has no contact for this channel
					}
					if _, err := notify.Enqueue(ctx, tx, now, base+"/"+ch+"/"+u, &msg); err != nil {
						return err
					}
					sent = true
				}
				if sent {
					out.Channels = append(out.Channels, ch)
				} else {
					out.Skipped = append(out.Skipped, ch)
				}
				continue
			}
			msg := m
			msg.Channel = ch
			for _, u := range users {
				if id := mention(oc.User(u), ch); id != "" {
					msg.Mentions = append(msg.Mentions, id)
				}
			}
			if _, err := notify.Enqueue(ctx, tx, now, base+"/"+ch, &msg); err != nil {
				return err
			}
			out.Channels = append(out.Channels, ch)
		}
		if len(out.Channels) == 0 {
			return fmt.Errorf("notify responders of %s: %w (channels %s not configured or without contacts)", n.IncidentID, ErrNoResponders, strings.Join(channels, ", "))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
