// Package events is the in-process event bus of sred. Subsystems publish what
// happened (incident created, notification sent, budget state changed, ...) and
// the live event stream, the timeline views and other subsystems subscribe.
//
// The bus is best-effort and non-blocking: durable state lives in the store,
// and a slow subscriber loses events rather than stalling a publisher.
package events

import (
	"sync"
	"time"
)

// Event is one thing that happened.
type Event struct {
	// Type is a dotted name such as "incident.created" or "budget.state_changed".
	Type       string         `json:"type"`
	Time       time.Time      `json:"time"`
	Service    string         `json:"service,omitempty"`
	IncidentID string         `json:"incident_id,omitempty"`
	Data       map[string]any `json:"data,omitempty"`
	// Origin is the replica that published the event when another sred
	// replica on the same PostgreSQL database did (package relay), empty
	// for the events of this process. It is not part of the stream's JSON.
	Origin string `json:"-"`
}

// Bus fans events out to subscribers.
type Bus struct {
	mu     sync.RWMutex
	subs   map[int]chan Event
	hooks  map[int]func(Event)
	next   int
	drops  func()
	buffer int
}

// NewBus returns a bus whose subscribers get a buffer of the given size.
// onDrop, if not nil, is called each time an event is dropped for a slow subscriber.
func NewBus(buffer int, onDrop func()) *Bus {
	if buffer <= 0 {
		buffer = 256
	}
	return &Bus{subs: map[int]chan Event{}, hooks: map[int]func(Event){}, drops: onDrop, buffer: buffer}
}

// Publish sends ev to every subscriber without blocking.
func (b *Bus) Publish(ev Event) {
	if b == nil {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, fn := range b.hooks {
		fn(ev)
	}
	for _, ch := range b.subs {
		select {
		case ch <- ev:
		default:
			if b.drops != nil {
				b.drops()
			}
		}
	}
}

// Attach calls fn with every event, inside Publish, until the returned
// function is called. fn must be quick and never block (it must not take
// a lock that a goroutine waiting on the publisher holds): it is for a
// subscriber that must see every event with no goroutine of its own to
// be scheduled, such as the WebSocket stream's ring (package stream).
func (b *Bus) Attach(fn func(Event)) func() {
	b.mu.Lock()
	defer b.mu.Unlock()
	id := b.next
	b.next++
	b.hooks[id] = fn
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.hooks, id)
	}
}

// Subscribe returns a channel of events and a function that ends the subscription.
func (b *Bus) Subscribe() (<-chan Event, func()) {
	return b.SubscribeBuffer(b.buffer)
}

// SubscribeBuffer is Subscribe with a buffer of its own size (the bus's
// when size <= 0), for a subscriber that must absorb bursts.
func (b *Bus) SubscribeBuffer(size int) (<-chan Event, func()) {
	if size <= 0 {
		size = b.buffer
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	id := b.next
	b.next++
	ch := make(chan Event, size)
	b.subs[id] = ch
	return ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if c, ok := b.subs[id]; ok {
			delete(b.subs, id)
			close(c)
		}
	}
}
