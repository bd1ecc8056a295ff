package reconcile

import (
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/rootuip/sre/pkg/receiver"
	"github.com/rootuip/sre/pkg/secretfile"
	"github.com/rootuip/sre/pkg/web"
)

// WatchdogPath is where an Alertmanager receiver dedicated to the heartbeat
// alert posts (see docs/reconcile.md).
const WatchdogPath = "/api/v1/webhook/watchdog"

// WebhookOptions configure the Watchdog webhook: the same bearer token
// (a token file is read at each delivery) and body limit as the main
// webhook.
type WebhookOptions struct {
	BearerToken  secretfile.Source
	MaxBodyBytes int64
}

// WatchdogHandler accepts Alertmanager webhook deliveries of the heartbeat
// alert. Deliveries are checked like the main webhook's; firing heartbeat
// alerts count as heartbeats, and nothing else in them is stored.
type WatchdogHandler struct {
	W    *Watchdog
	opts atomic.Pointer[WebhookOptions]
}

// NewWatchdogHandler returns the handler.
func NewWatchdogHandler(w *Watchdog, o WebhookOptions) *WatchdogHandler {
	h := &WatchdogHandler{W: w}
	h.SetOptions(o)
	return h
}

// SetOptions replaces the options (on config reload).
func (h *WatchdogHandler) SetOptions(o WebhookOptions) { h.opts.Store(&o) }

// ServeHTTP implements http.Handler.
func (h *WatchdogHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o := h.opts.Load()
	msg, rerr := receiver.DecodeRequest(w, r, o.BearerToken, o.MaxBodyBytes)
	if rerr != nil {
		web.Error(w, rerr.Code, rerr.Type, rerr)
		return
	}
	// The same rules as the main webhook's: a start before 2000 or a time
	// a day or more after sred's clock is not Alertmanager's
	// (receiver.BeforeMinStartsAt, receiver.AheadOfClock).
	if err := msg.CheckTimes(h.W.Clock.Now()); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("invalid webhook payload: %w", err))
		return
	}
	if h.W.Options().Alertname == "" {
		web.Error(w, http.StatusConflict, "disabled", errors.New("the watchdog is disabled (alertmanager.watchdog.alertname is empty)"))
		return
	}
	seen, err := h.W.Observe(r.Context(), msg.Notification().Alerts)
	if err != nil {
		web.Error(w, http.StatusServiceUnavailable, "unavailable", err)
		return
	}
	web.JSON(w, http.StatusOK, map[string]any{"heartbeat": seen})
}

// SilencesPath lists the silences sred created for an incident.
const SilencesPath = "/api/v1/incidents/{id}/silences"

// SilencesHandler serves GET /api/v1/incidents/{id}/silences.
type SilencesHandler struct{ S *Silencer }

// ServeHTTP implements http.Handler.
func (h SilencesHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := h.S.inc.Get(r.Context(), id); err != nil {
		web.ServiceError(w, err)
		return
	}
	recs, err := h.S.Silences(r.Context(), id)
	if err != nil {
		web.ServiceError(w, err)
		return
	}
	web.JSON(w, http.StatusOK, recs)
}
