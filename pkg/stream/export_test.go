package stream

// Settled reports whether n clients are subscribed and none of them is
// queued for a writer or being written to: each subscription's own pass
// (the end of serve's acknowledgement) is over, so that no pass runs
// until a wake-up of Run queues one.
func (h *Hub) Settled(n int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.clients) != n {
		return false
	}
	for c := range h.clients {
		if c.queued.Load() {
			return false
		}
	}
	return true
}
