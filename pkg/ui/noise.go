package ui

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/noise"
)

// NoiseReport builds the alert noise report (noise.Build over the store).
type NoiseReport func(ctx context.Context, o noise.Options) (*noise.Report, error)

// noiseLimit is how many of the noisiest alerts the page lists.
const noiseLimit = 50

// noisePeriods are the choices of the since filter.
var noisePeriods = []string{"7d", "30d", "90d"}

type noiseRow struct {
	noise.Row
	MeanAck string
}

type noiseData struct {
	Disabled bool
	Since    string
	Periods  []string
	Report   *noise.Report
	Rows     []noiseRow
}

// noisePage serves GET /noise[?since=30d]: the report of `srectl report
// noise` (pages per alert rule and service, per week, resolved by
// themselves, acknowledged without action, flapping, at night, time to
// acknowledge, and the suggestion for the noisiest).
func (u *UI) noisePage(w http.ResponseWriter, r *http.Request) {
	d := noiseData{Since: r.URL.Query().Get("since"), Periods: noisePeriods}
	if d.Since == "" {
		d.Since = "30d"
	}
	if !slices.Contains(d.Periods, d.Since) {
		d.Periods = append(slices.Clone(d.Periods), d.Since)
	}
	if u.src.Noise == nil {
		d.Disabled = true
		u.render(w, r, http.StatusOK, "noise.html", "Noise", "noise", d)
		return
	}
	since, err := model.ParseDuration(d.Since)
	if err != nil || since <= 0 {
		u.errorPage(w, r, http.StatusBadRequest, fmt.Errorf("since: want a positive duration (7d, 30d, 90d), got %s", limits.Quote(d.Since)))
		return
	}
	now := u.opts.Clock.Now()
	if d.Report, err = u.src.Noise(r.Context(), noise.Options{Since: now.Add(-time.Duration(since)), Until: now, Limit: noiseLimit}); err != nil {
		u.fail(w, r, err)
		return
	}
	for _, row := range d.Report.Rows {
		nr := noiseRow{Row: row, MeanAck: "–"}
		if row.Acked > 0 {
			nr.MeanAck = humanDuration(time.Duration(row.MeanTimeToAckSeconds * float64(time.Second)))
		}
		d.Rows = append(d.Rows, nr)
	}
	u.render(w, r, http.StatusOK, "noise.html", "Noise", "noise", d)
}
