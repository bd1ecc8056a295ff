package escalation

// Recovering: the incident's SLO stopped burning. The escalation stops and
// everyone who was paged hears the all-clear on the channel they were paged
// on; PagerDuty gets a resolve.

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/notify"
)

func (e *Engine) recovering(ctx context.Context, tx *sql.Tx, id string, now time.Time) error {
	st, err := e.load(ctx, tx, id)
	if err != nil || st == nil || st.state == StateResolved || st.state == StateRecovering {
		return err
	}
	n, err := jobs.CancelGroup(ctx, tx, now, Queue, id)
	if err != nil {
		return err
	}
	if err := e.setState(ctx, tx, id, StateRecovering, st.level, now); err != nil {
		return err
	}
	sent, err := e.allClear(ctx, tx, st, now)
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("Escalation stopped: the SLO is recovering (%d pending step(s) cancelled)", n)
	if len(sent) > 0 {
		msg += "; all-clear sent via " + strings.Join(sent, ", ")
	} else {
		msg += "; nobody had been paged, no all-clear to send"
	}
	return e.note(ctx, tx, id, now, msg, map[string]any{"all_clear": sent})
}

// allClear writes one all-clear message to every destination that got a
// page (a trigger message) for the incident since its last all-clear (a
// resolve, for PagerDuty), and a resolve to PagerDuty: not to one whose
// pages since then all never reached it (notify.Record.Reaches:
// withdrawn before delivery, failed for good, or withdrawn while being
// sent by a sender whose lease ended without an outcome). A destination
// that heard the all-clear of an earlier escalation run and was not paged
// again (the incident burned again and recovered before the new run paged
// it) hears nothing more.
// It returns the channels written to ("email to alice", "slack").
func (e *Engine) allClear(ctx context.Context, tx *sql.Tx, st *stateRow, now time.Time) ([]string, error) {
	recs, err := notify.List(ctx, tx, st.snap.ID)
	if err != nil {
		return nil, err
	}
	var sent []string
	for _, m := range owedAllClear(recs, now) {
		what, _, err := e.allClearTo(ctx, tx, st, m, now)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(sent, what) {
			sent = append(sent, what)
		}
	}
	return sent, nil
}

// owedAllClear returns, from an incident's outbox rows (oldest first),
// the first page to each destination that reached it or still may since
// the last all-clear written to it (a resolve, for PagerDuty), in the
// order of those pages. A page withdrawn before it was delivered (the
// incident was acknowledged: notify.Withdraw), or that failed for good,
// never reached its destination: it is owed nothing. One being sent, or
// still retried, may: it is owed the all-clear.
func owedAllClear(recs []notify.Record, now time.Time) []*notify.Message {
	owed := map[string]*notify.Message{}
	var order []string
	for _, r := range recs {
		m := r.Message
		if m == nil {
			continue
		}
		dest := m.Channel + "\x00" + m.User + "\x00" + m.To
		switch {
		case m.Event == notify.EventAllClear || m.Channel == notify.ChannelPagerDuty && m.Event == notify.EventResolve:
			delete(owed, dest)
		case m.Event == notify.EventTrigger && r.Reaches(now) && owed[dest] == nil:
			owed[dest] = m
			order = append(order, dest)
		}
	}
	var out []*notify.Message
	for _, dest := range order {
		if m := owed[dest]; m != nil {
			out = append(out, m)
			delete(owed, dest)
		}
	}
	return out
}

// allClearTo writes the all-clear of the incident to the destination of
// page m (a resolve for PagerDuty), once per destination and escalation
// epoch (its text says resolved on a resolved incident), and returns the channel written to ("email to alice", "slack")
// and whether it was not written before.
func (e *Engine) allClearTo(ctx context.Context, tx *sql.Tx, st *stateRow, m *notify.Message, now time.Time) (string, bool, error) {
	_, _, ext := e.config()
	incURL := ""
	if ext != "" {
		incURL = ext + "/incidents/" + url.PathEscape(st.snap.ID)
	}
	subject := fmt.Sprintf("[RECOVERING] Incident %s: %s", st.snap.ID, st.snap.Title)
	body := fmt.Sprintf("✅ [RECOVERING] Incident: %s\nID: %s\nAll clear: the error budget is no longer burning fast "+
		"(every short burn-rate window is back under its threshold). Escalation stopped; "+
		"the incident resolves when its alerts resolve.\n", st.snap.Title, st.snap.ID)
	if st.state == StateResolved {
		// A page delivered late, after the incident recovered and then
		// resolved (LateDelivery).
		subject = fmt.Sprintf("[RESOLVED] Incident %s: %s", st.snap.ID, st.snap.Title)
		body = fmt.Sprintf("✅ [RESOLVED] Incident: %s\nID: %s\nAll clear: the error budget stopped burning fast "+
			"and the incident is resolved. Escalation stopped.\n", st.snap.Title, st.snap.ID)
	}
	if incURL != "" {
		body += "Incident: " + incURL + "\n"
	}
	out := &notify.Message{IncidentID: st.snap.ID, Channel: m.Channel, Event: notify.EventAllClear, User: m.User, To: m.To,
		Mentions: m.Mentions, Subject: subject, Body: body, Title: st.snap.Title, Service: st.snap.Service,
		Severity: st.snap.Severity, Labels: st.snap.Labels, URL: incURL, Time: now}
	if m.Channel == notify.ChannelPagerDuty {
		out.Event = notify.EventResolve
	}
	key := fmt.Sprintf("esc/%s/%d/allclear/%s/%s/%s", st.snap.ID, st.epoch, m.Channel, m.User, m.To)
	added, err := notify.Enqueue(ctx, tx, now, key, out)
	if err != nil {
		return "", false, err
	}
	what := m.Channel
	if m.User != "" {
		what += " to " + m.User
	}
	return what, added, nil
}
