package escalation

// Turning a step into notifications: rendering the messages of each channel
// and user and putting them in the notify queue, in the step's transaction.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/oncall"
	"github.com/rootuip/sre/pkg/store"
)

// stateChannels are the channels that keep an incident's state from its
// events, and so get its acknowledge and resolve after a trigger:
// PagerDuty (its incident) and the webhook (a ticket or a thread a
// receiver keeps per incident). The others hear only pages, reminders
// and the all-clear.
var stateChannels = []string{notify.ChannelPagerDuty, notify.ChannelWebhook}

// stateEvent sends acknowledge/resolve to each of stateChannels whose
// trigger reached it or still may (notify.Record.Reaches: delivered, or
// being sent, withdrawn meanwhile or not): not when every trigger was
// withdrawn before its send began, failed for good, failed while
// withdrawn, or was withdrawn while a sender that then died or stalled
// was sending it (its lease ended at now without an outcome). The
// receiver would get an event of an incident it never heard of. actor
// is who acknowledged or resolved it. The caller withdraws the pending
// triggers first (notify.Withdraw).
func (e *Engine) stateEvent(ctx context.Context, tx *sql.Tx, st *stateRow, event, actor string, now time.Time) error {
	recs, err := notify.List(ctx, tx, st.snap.ID)
	if err != nil {
		return fmt.Errorf("%s of %s: %w", event, st.snap.ID, err)
	}
	for _, ch := range stateChannels {
		if !slices.ContainsFunc(recs, func(r notify.Record) bool {
			return r.Channel == ch && r.Event == notify.EventTrigger && r.Reaches(now)
		}) {
			continue
		}
		if err := e.stateMessage(ctx, tx, st, ch, event, actor, now); err != nil {
			return err
		}
	}
	return nil
}

// stateMessage writes the incident's event (acknowledge, resolve) to
// channel, one of stateChannels: one message for the incident, however
// many people its triggers paged there.
func (e *Engine) stateMessage(ctx context.Context, tx *sql.Tx, st *stateRow, channel, event, actor string, now time.Time) error {
	m := &notify.Message{IncidentID: st.snap.ID, Channel: channel, Event: event, Subject: st.snap.Title,
		Title: st.snap.Title, Service: st.snap.Service, Severity: st.snap.Severity, Time: now}
	if channel == notify.ChannelWebhook {
		word := map[string]string{notify.EventAcknowledge: "ACKNOWLEDGED", notify.EventResolve: "RESOLVED"}[event]
		m.Subject = fmt.Sprintf("[%s] Incident %s: %s", word, st.snap.ID, st.snap.Title)
		m.Body = fmt.Sprintf("[%s] Incident: %s\nID: %s\n", word, st.snap.Title, st.snap.ID)
		if actor != "" {
			m.Body += fmt.Sprintf("%s by %s\n", word[:1]+strings.ToLower(word[1:]), actor)
			m.User = actor
		}
		m.Labels = st.snap.Labels
		if _, _, ext := e.config(); ext != "" {
			m.URL = ext + "/incidents/" + url.PathEscape(st.snap.ID)
		}
	}
	_, err := notify.Enqueue(ctx, tx, now, fmt.Sprintf("esc/%s/%d/%s/%s/%d", st.snap.ID, st.epoch, channel, event, jobs.Millis(now)), m)
	return err
}

// LateDelivery makes up for a page withdrawn while it was being sent
// whose delivery was recorded after its sender's lease had ended
// (notify.LateDelivery; the sender calls it in the transaction that
// records the delivery): until then the page read as one that reached
// nobody, so what follows a page was not written for it. Its destination
// now gets what the incident's state calls for: on a recovering incident
// the all-clear (PagerDuty: resolve), unless it got it already; a
// PagerDuty trigger, the resolve of a resolved incident or the
// acknowledge of an acknowledged one, unless one was written after the
// page; another channel, on an incident resolved after it recovered in
// this escalation or, for a page of an earlier escalation run (the
// incident re-opened or burned again since), after it recovered at any
// time since the page was written (the recovery's all-clear skipped the
// page), the all-clear, unless it got it already or one was written to
// its destination after the page. The timeline says what was sent.
func (e *Engine) LateDelivery(ctx context.Context, tx *sql.Tx, page int64, m *notify.Message, now time.Time) error {
	if m.Event != notify.EventTrigger {
		return nil
	}
	st, err := e.load(ctx, tx, m.IncidentID)
	if err != nil || st == nil {
		return err
	}
	who := m.Channel
	if m.User != "" {
		who += " to " + m.User
	}
	var sent string
	switch {
	case st.state == StateRecovering:
		what, added, err := e.allClearTo(ctx, tx, st, m, now)
		if err != nil || !added {
			return err
		}
		sent = "all-clear sent via " + what
	case slices.Contains(stateChannels, m.Channel) && (st.state == StateResolved || st.state == StateAcknowledged):
		event, actor := notify.EventResolve, ""
		if st.state == StateAcknowledged {
			event, actor = notify.EventAcknowledge, st.ackedBy
		}
		recs, err := notify.List(ctx, tx, st.snap.ID)
		if err != nil {
			return fmt.Errorf("%s %s of %s: %w", m.Channel, event, st.snap.ID, err)
		}
		if slices.ContainsFunc(recs, func(r notify.Record) bool {
			return r.ID > page && r.Channel == m.Channel && r.Event == event
		}) {
			return nil
		}
		if err := e.stateMessage(ctx, tx, st, m.Channel, event, actor, now); err != nil {
			return err
		}
		name := m.Channel
		if m.Channel == notify.ChannelPagerDuty {
			name = "PagerDuty"
		}
		sent = name + " " + event + " sent"
	case st.state == StateResolved:
		recovered, err := e.recoveredBeforeResolve(ctx, tx, st)
		if err == nil && !recovered {
			recovered, err = e.recoveredAfterPage(ctx, tx, st, page, m)
		}
		if err != nil || !recovered {
			return err
		}
		what, added, err := e.allClearTo(ctx, tx, st, m, now)
		if err != nil || !added {
			return err
		}
		sent = "all-clear sent via " + what
	default:
		return nil
	}
	return e.note(ctx, tx, st.snap.ID, now, fmt.Sprintf("Page (trigger) by %s, withdrawn while it was being sent, was delivered after its sender's lease had ended: %s", who, sent),
		map[string]any{"channel": m.Channel, "user": m.User, "late_delivery": sent})
}

// recoveredAfterPage reports whether the incident of st turned
// recovering at any time since page m (outbox row page) was written,
// in an earlier escalation run too (burning again or a re-open cleared
// recovering_since since: the timeline keeps the recovery), and no
// all-clear to m's destination was written after the page: the page read
// as one that reached nobody then, and an all-clear that was owed to it
// was skipped.
func (e *Engine) recoveredAfterPage(ctx context.Context, tx *sql.Tx, st *stateRow, page int64, m *notify.Message) (bool, error) {
	recs, err := notify.List(ctx, tx, st.snap.ID)
	if err != nil {
		return false, fmt.Errorf("recovery of %s after page %d: %w", st.snap.ID, page, err)
	}
	i := slices.IndexFunc(recs, func(r notify.Record) bool { return r.ID == page })
	if i < 0 {
		return false, nil
	}
	if slices.ContainsFunc(recs[i+1:], func(r notify.Record) bool {
		return r.Event == notify.EventAllClear && r.Channel == m.Channel && r.User == m.User && r.To == m.To
	}) {
		return false, nil
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM incident_timeline WHERE incident_id = $1 AND kind = 'recovering' AND `+recoveryEntry+` AND at >= $2`,
		st.snap.ID, jobs.Millis(recs[i].CreatedAt)).Scan(&n); err != nil {
		return false, fmt.Errorf("recovery of %s after page %d: %w", st.snap.ID, page, err)
	}
	return n > 0, nil
}

// recoveryEntry matches the timeline entries of kind 'recovering' that
// record a recovery (incident.Service.MarkRecovering), not a burn again:
// by the marker of their data, "recovery": true (encoding/json writes it
// so, and a string value cannot hold it unescaped); an entry written
// before the marker, which has none, by its wording.
const recoveryEntry = `(data LIKE '%"recovery":true%' OR (data NOT LIKE '%"recovery":%' AND message LIKE 'recovering: %'))`

// recoveredBeforeResolve reports whether the resolved incident of st
// was recovering in its escalation's epoch before it resolved (the
// recovery wrote the all-clear of that epoch; a resolution does not
// clear the incident's recovering_since, and burning again or a re-open,
// which do, start a new epoch).
func (e *Engine) recoveredBeforeResolve(ctx context.Context, tx *sql.Tx, st *stateRow) (bool, error) {
	var since sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT recovering_since FROM incidents WHERE id = $1`, st.snap.ID).Scan(&since)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read recovery of %s: %w", st.snap.ID, err)
	}
	return since.Valid && since.Int64 >= jobs.Millis(st.started), nil
}

// page writes the outbox messages for users at one level, with the
// escalation's own jobs also (its next step, its handoff checks) in the
// same statement, and records who was paged. reason, when not empty, is
// why the level was escalated to at once (EscalateNow), which the
// message says. It returns what was sent to whom.
func (e *Engine) page(ctx context.Context, tx *sql.Tx, b *store.Batch, st *stateRow, cycle, level int, users, channels []string, now, next time.Time, tag, reason string, also []jobs.New) (*sentSet, error) {
	actions := fmt.Sprintf("Escalation level %d: paging %s", level, strings.Join(users, ", "))
	if reason != "" {
		actions = fmt.Sprintf("Escalated now (%s): level %d: paging %s", reason, level, strings.Join(users, ", "))
	}
	return e.send(ctx, tx, st, pageSpec{cycle: cycle, level: level, users: users, channels: channels, now: now, next: next, tag: tag,
		event: notify.EventTrigger, status: "triggered", actions: actions, record: true,
		also: also, batch: b})
}

// pageSpec describes one batch of messages of an escalation.
type pageSpec struct {
	cycle, level    int
	users, channels []string
	now, next       time.Time
	tag             string
	event, status   string
	actions         string
	// record writes the users to escalation_pages (pages, not reminders).
	record bool
	// also are jobs of the escalation queue written with the messages, in
	// one statement (on PostgreSQL one round trip for all of them).
	also []jobs.New
	// batch, when set, takes the page's writes (the pages recorded, the
	// messages and jobs), run by the caller; otherwise send runs them, in
	// one statement on PostgreSQL.
	batch *store.Batch
}

// sentSet is what one page or reminder sent.
type sentSet struct {
	// channels has at least one message; skipped are not configured.
	channels, skipped []string
	// perUser lists the channels each user was reached on (chat and
	// webhook channels count for every user); noContact the channels a
	// user has no contact for.
	perUser, noContact map[string][]string
}

// describe says who was reached how: "bob, alice via sms, push; carol via
// sms (no push contact for carol)".
func (s *sentSet) describe(users []string) string {
	var groups []string
	var members [][]string
	for _, u := range users {
		via := strings.Join(s.perUser[u], ", ")
		i := slices.Index(groups, via)
		if i < 0 {
			groups, members = append(groups, via), append(members, nil)
			i = len(groups) - 1
		}
		members[i] = append(members[i], u)
	}
	var parts []string
	for i, via := range groups {
		if via == "" {
			parts = append(parts, strings.Join(members[i], ", ")+" (nothing sent)")
			continue
		}
		parts = append(parts, strings.Join(members[i], ", ")+" via "+via)
	}
	out := strings.Join(parts, "; ")
	var missing []string
	for _, u := range users {
		if chs := s.noContact[u]; len(chs) > 0 {
			missing = append(missing, fmt.Sprintf("no %s contact for %s", strings.Join(chs, ", "), u))
		}
	}
	if len(missing) > 0 {
		out += " (" + strings.Join(missing, "; ") + ")"
	}
	return out
}

// addTo records the outcome in a timeline entry's data.
func (s *sentSet) addTo(data map[string]any) map[string]any {
	data["channels"] = s.channels
	data["sent"] = s.perUser
	if len(s.skipped) > 0 {
		data["unconfigured_channels"] = s.skipped
	}
	if len(s.noContact) > 0 {
		data["no_contact"] = s.noContact
	}
	return data
}

// send writes the outbox messages of one page or reminder.
func (e *Engine) send(ctx context.Context, tx *sql.Tx, st *stateRow, ps pageSpec) (*sentSet, error) {
	out := &sentSet{perUser: map[string][]string{}, noContact: map[string][]string{}}
	_, ncfg, ext := e.config()
	oc := e.dir.Config()
	id := st.snap.ID
	cycle, level, users, channels, now, next := ps.cycle, ps.level, ps.users, ps.channels, ps.now, ps.next
	base := fmt.Sprintf("esc/%s/%d/%d/%d", id, st.epoch, cycle, level)
	if ps.tag != "" {
		base += "/" + ps.tag
	}
	incURL := ""
	if ext != "" {
		incURL = ext + "/incidents/" + url.PathEscape(id)
	}
	b := ps.batch
	if b == nil {
		b = &store.Batch{}
	}
	if ps.record && len(users) > 0 {
		// Who was paged, in one statement.
		var q strings.Builder
		q.WriteString(`INSERT INTO escalation_pages (incident_id, epoch, user_name, level, paged_at) VALUES `)
		args := make([]any, 0, 5*len(users))
		for i, u := range users {
			if i > 0 {
				q.WriteString(", ")
			}
			n := len(args)
			fmt.Fprintf(&q, "($%d, $%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4, n+5)
			args = append(args, id, st.epoch, u, level, jobs.Millis(now))
		}
		q.WriteString(` ON CONFLICT DO NOTHING`)
		b.Add(q.String(), args...)
	}
	data := notify.TemplateData{ID: id, Title: st.snap.Title, Service: st.snap.Service, Severity: st.snap.Severity, Status: ps.status,
		Labels: st.snap.Labels, Started: st.snap.Started, Impact: st.snap.Impact, Level: level, Users: users, NextUpdate: next, URL: incURL,
		Actions: ps.actions, Sent: now}
	// A user's message is the same on every channel (the templates do not
	// see the channel): it is rendered, and its acknowledge link signed,
	// once per user, and the acknowledge secret read once per page. The
	// step runs in the store's write transaction, where a file read and a
	// rendering per channel and user were a third of the step's time.
	ackKey := sync.OnceValues(ncfg.AckKey)
	rendered := make(map[string]*notify.Message, len(users))
	render := func(user string) (*notify.Message, error) {
		if m, ok := rendered[user]; ok {
			c := *m
			return &c, nil
		}
		d := data
		if user != "" {
			u, err := e.ackURL(ncfg, ackKey, ext, id, user, now)
			if err != nil {
				// The message goes out without its acknowledge link.
				e.logger.Warn("no acknowledge link in notification", "incident", id, "user", user, "err", err)
			}
			d.AckURL = u
		}
		subj, body, err := ncfg.Render(d)
		if err != nil {
			return nil, err
		}
		m := &notify.Message{IncidentID: id, Event: ps.event, User: user, Subject: subj, Body: body, Title: st.snap.Title,
			Service: st.snap.Service, Severity: st.snap.Severity, Level: level, Labels: st.snap.Labels, URL: incURL, AckURL: d.AckURL, Time: now}
		rendered[user] = m
		c := *m
		return &c, nil
	}
	// The messages are written together once rendered: one statement for
	// all of them (one round trip on PostgreSQL instead of one each).
	var msgs []notify.Pending
	for _, ch := range channels {
		if !ncfg.Configured(ch) {
			out.skipped = append(out.skipped, ch)
			continue
		}
		if notify.PerUser(ch) {
			reached := false
			for _, u := range users {
				m, err := render(u)
				if err != nil {
					return nil, err
				}
				m.Channel, m.To = ch, contact(oc.User(u), ch)
				if m.To == "" {
					out.noContact[u] = append(out.noContact[u], ch)
					continue
				}
				msgs = append(msgs, notify.Pending{Key: base + "/" + ch + "/" + u, Message: m})
				out.perUser[u] = append(out.perUser[u], ch)
				reached = true
			}
			if reached {
				out.channels = append(out.channels, ch)
			}
			continue
		}
		if len(users) == 0 {
			continue
		}
		out.channels = append(out.channels, ch)
		for _, u := range users {
			out.perUser[u] = append(out.perUser[u], ch)
		}
		ackUser := users[0]
		m, err := render(ackUser)
		if err != nil {
			return nil, err
		}
		m.Channel, m.User = ch, ""
		for _, u := range users {
			if id := mention(oc.User(u), ch); id != "" {
				m.Mentions = append(m.Mentions, id)
			}
		}
		msgs = append(msgs, notify.Pending{Key: base + "/" + ch, Message: m})
	}
	js, err := notify.Jobs(now, msgs)
	if err != nil {
		return nil, err
	}
	if js = append(js, ps.also...); len(js) > 0 {
		if err := jobs.EnqueueAllTo(b, now, js); err != nil {
			return nil, fmt.Errorf("enqueue the messages and jobs of %s's escalation: %w", id, err)
		}
	}
	if ps.batch == nil {
		if err := b.Exec(ctx, e.db.Dialect, tx); err != nil {
			return nil, fmt.Errorf("record the pages, messages and jobs of %s's escalation: %w", id, err)
		}
	}
	sort.Strings(out.skipped)
	return out, nil
}

// mention is how a chat channel names a user in a message.
func mention(u *oncall.User, ch string) string {
	if u == nil {
		return ""
	}
	switch ch {
	case notify.ChannelSlack:
		return u.Slack
	case notify.ChannelTeams:
		return u.Teams
	case notify.ChannelMattermost:
		return strings.TrimPrefix(u.Mattermost, "@")
	}
	return ""
}

func contact(u *oncall.User, ch string) string {
	if u == nil {
		return ""
	}
	switch ch {
	case notify.ChannelEmail:
		return u.Email
	case notify.ChannelSMS, notify.ChannelPhone:
		return u.Phone
	case notify.ChannelPush:
		return u.Push
	}
	return ""
}

// ackURL returns the acknowledge link of a notification to user: empty
// without an external URL or ack secret (links are off), an error when the
// secret (from ackKey) cannot be read or the token not signed.
func (e *Engine) ackURL(ncfg *notify.Config, ackKey func() (string, error), ext, id, user string, now time.Time) (string, error) {
	if ext == "" {
		return "", nil
	}
	key, err := ackKey()
	if err != nil {
		return "", fmt.Errorf("acknowledge link: %w", err)
	}
	if key == "" {
		return "", nil
	}
	tok, err := notify.SignAck(key, notify.AckClaims{IncidentID: id, User: user, Expires: now.Add(time.Duration(ncfg.AckLinkTTL)).Unix()})
	if err != nil {
		return "", fmt.Errorf("acknowledge link: %w", err)
	}
	return ext + "/ack/" + tok, nil
}
