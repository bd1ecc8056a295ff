package notify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"syscall"
	"time"

	"github.com/rootuip/sre/pkg/english"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/secretfile"
)

// Pause is a notification channel's pause as reads show it beside a
// message held back by it: the channel, since when and after how many
// failures it is paused, when its next probe may go out and its last
// failure in a few fixed words. It comes from the sender's memory, at
// read time: nothing of it is stored.
type Pause struct {
	Channel     string    `json:"channel"`
	PausedSince time.Time `json:"paused_since"`
	NextProbe   time.Time `json:"next_probe_at"`
	Failures    int       `json:"channel_failures"`
	LastError   string    `json:"last_error"`
}

// Pauses returns the channels paused at now (their pause not over yet).
func (s *Sender) Pauses(now time.Time) map[string]Pause {
	s.chMu.Lock()
	defer s.chMu.Unlock()
	var out map[string]Pause
	for ch, h := range s.channels {
		if !now.Before(h.until) {
			continue
		}
		if out == nil {
			out = map[string]Pause{}
		}
		out[ch] = Pause{Channel: ch, PausedSince: h.since, NextProbe: h.until, Failures: h.failures, LastError: h.reason}
	}
	return out
}

// Annotate sets Queued on the records that are due but held back by
// their channel's pause (pending, due by now, on a channel paused now),
// from the sender's memory: no read or write of the store.
func (s *Sender) Annotate(recs []Record) {
	now := s.clock.Now()
	annotate(recs, now, s.Pauses(now))
}

// annotate is the one walk of an incident's messages against the
// channels' pauses, for Annotate (the escalation status) and queued (the
// timeline): it sets Queued on each record pending, due by now, whose
// channel pauses has.
func annotate(recs []Record, now time.Time, pauses map[string]Pause) {
	if len(pauses) == 0 {
		return
	}
	for i := range recs {
		r := &recs[i]
		p, ok := pauses[r.Channel]
		if ok && r.State == StatePending && !r.NextAttempt.After(now) {
			r.Queued = &p
		}
	}
}

// Queued returns the messages of an incident that are due but held back
// by their channel's pause, each with the pause (Record.Queued). While no
// channel is paused it reads nothing; otherwise it reads the incident's
// messages once. It writes nothing.
func (s *Sender) Queued(ctx context.Context, incidentID string) ([]Record, error) {
	recs, _, err := s.queued(ctx, incidentID)
	return recs, err
}

// queued is Queued, with the time its pauses were read at: the pauses,
// the walk (annotate) and the entries of QueuedTimeline are of one
// instant.
func (s *Sender) queued(ctx context.Context, incidentID string) ([]Record, time.Time, error) {
	now := s.clock.Now()
	pauses := s.Pauses(now)
	if len(pauses) == 0 {
		return nil, now, nil
	}
	recs, err := List(ctx, s.db, incidentID)
	if err != nil {
		return nil, now, err
	}
	annotate(recs, now, pauses)
	var out []Record
	for _, r := range recs {
		if r.Queued != nil {
			out = append(out, r)
		}
	}
	return out, now, nil
}

// QueuedTimeline returns a timeline entry for each message of an
// incident that is due but held back by its channel's pause (Queued),
// dated now: entries of the incident's state at read time, not stored
// (their id is 0), for the incident's timeline in the API and the
// console (incident.Service.SetLiveTimeline).
func (s *Sender) QueuedTimeline(ctx context.Context, incidentID string) ([]incident.TimelineEntry, error) {
	recs, now, err := s.queued(ctx, incidentID)
	if err != nil || len(recs) == 0 {
		return nil, err
	}
	out := make([]incident.TimelineEntry, len(recs))
	for i, r := range recs {
		out[i] = queuedEntry(r, now)
	}
	return out, nil
}

// EntryTime is how a timeline entry's message gives a time, with its
// date (a pause may have begun the day before, the next escalation level
// may be due after midnight), as the console and the post-mortem show
// times.
const EntryTime = "2006-01-02 15:04:05 UTC"

// queuedEntry is the timeline entry of a message r held back by its
// channel's pause.
func queuedEntry(r Record, now time.Time) incident.TimelineEntry {
	p := r.Queued
	who := r.Channel
	data := map[string]any{"channel": r.Channel, "event": r.Event, "notification_id": r.ID, "queued": true,
		"due_at": r.NextAttempt.UTC().Format(time.RFC3339), "paused_since": p.PausedSince.UTC().Format(time.RFC3339),
		"next_probe_at": p.NextProbe.UTC().Format(time.RFC3339), "channel_failures": p.Failures, "last_error": p.LastError}
	if r.User != "" {
		who = r.Channel + " to " + r.User
		data["user"] = r.User
	}
	msg := fmt.Sprintf("Notification (%s) by %s queued, not sent yet: the %s channel is paused since %s after %s (last error: %s); next probe at %s",
		r.Event, who, r.Channel, p.PausedSince.UTC().Format(EntryTime), english.Count(p.Failures, "failure", "failures"), p.LastError, p.NextProbe.UTC().Format(EntryTime))
	return incident.TimelineEntry{IncidentID: r.IncidentID, Time: now, Kind: "notification", Actor: "sred", Message: msg, Data: data}
}

// shortReason names a delivery failure in a few fixed words (the HTTP or
// SMTP status, the kind of network error), never the error's own text,
// which may carry a receiver's answer or an endpoint's address.
func shortReason(err error) string {
	var (
		de  *DeliveryError
		te  *textproto.Error
		dns *net.DNSError
		ne  net.Error
	)
	switch {
	case errors.As(err, &de) && de.Status != 0:
		return fmt.Sprintf("HTTP %d", de.Status)
	case errors.As(err, &te):
		return fmt.Sprintf("SMTP %d", te.Code)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, &dns):
		return "DNS lookup failed"
	case errors.Is(err, secretfile.ErrEmpty):
		return "secret file empty"
	case errors.Is(err, os.ErrNotExist), errors.Is(err, os.ErrPermission):
		return "secret file unreadable"
	}
	return "delivery error"
}
