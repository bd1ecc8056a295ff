package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/receiver"
)

// alertOptions are the flags of `srectl alert fire|resolve`: a test alert
// posted to sred's webhook as Alertmanager would post it, starting now.
type alertOptions struct {
	sredAPI
	labels      map[string]string
	annotations map[string]string
	tokenFile   string
}

// defaultAlertLabels are the labels of the page tier of the availability
// SLO of examples/slos/api.yml, as the generated rules fire it.
var defaultAlertLabels = map[string]string{
	"alertname": "SLOBurnRatePage",
	"service":   "api",
	"slo":       "availability",
	"severity":  "page",
	"burn_tier": "page_fast",
}

func init() {
	registerCommand(45, func(app *kingpin.Application) map[string]func(*Env) error {
		o := alertOptions{labels: map[string]string{}, annotations: map[string]string{}}
		cmd := app.Command("alert", "Send a test alert to sred's Alertmanager webhook, as Alertmanager would (starting now).")
		o.flags(cmd)
		cmd.Flag("label", "Label of the alert (repeatable, name=value). Default: the page tier of api/availability (alertname=SLOBurnRatePage, service=api, slo=availability, severity=page, burn_tier=page_fast; annotated burn_rate_threshold=14.4).").
			Short('l').StringMapVar(&o.labels)
		cmd.Flag("annotation", "Annotation of the alert (repeatable, name=value).").StringMapVar(&o.annotations)
		cmd.Flag("webhook.token-file", "File holding the webhook bearer token (webhook.bearer_token_file of sred.yml).").StringVar(&o.tokenFile)
		cmd.Command("fire", "Send the alert firing, starting now: sred opens (or updates) the incident of its group.")
		cmd.Command("resolve", "Send the resolve of the alert fired with the same labels: sred resolves the incident when its alerts have resolved.")
		return map[string]func(*Env) error{
			"alert fire":    func(env *Env) error { return runAlert(env, o, false) },
			"alert resolve": func(env *Env) error { return runAlert(env, o, true) },
		}
	})
}

func runAlert(env *Env, o alertOptions, resolve bool) error {
	labels := o.labels
	if len(labels) == 0 {
		labels = defaultAlertLabels
	}
	ls := model.LabelSet{}
	for k, v := range labels {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	if err := ls.Validate(); err != nil {
		return &ExitError{Code: 2, Err: fmt.Errorf("--label: %w", err)}
	}
	if _, ok := labels["alertname"]; !ok {
		return &ExitError{Code: 2, Err: fmt.Errorf("--label: alertname is required")}
	}
	annotations := o.annotations
	if len(annotations) == 0 {
		annotations = map[string]string{"summary": fmt.Sprintf("Test alert %s from srectl alert fire", labels["alertname"])}
		if len(o.labels) == 0 {
			// The factor of the page_fast tier of a 30-day SLO, as the
			// generated rules annotate it.
			annotations[incident.AnnotationBurnRate] = "14.4"
		}
	}
	var hdr http.Header
	if o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return &ExitError{Code: 1, Err: fmt.Errorf("--webhook.token-file: %w", err)}
		}
		hdr = http.Header{"Authorization": {"Bearer " + strings.TrimSpace(string(b))}}
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	fp := ls.Fingerprint().String()
	a := receiver.Alert{Status: "firing", Labels: labels, Annotations: annotations, StartsAt: now, Fingerprint: fp}
	status := "firing"
	if resolve {
		starts, err := o.firingSince(ls, fp)
		if err != nil {
			return err
		}
		a.Status, a.StartsAt, a.EndsAt, status = "resolved", starts, now, "resolved"
	}
	// Grouped as examples/alertmanager.yml groups it: SLO alerts by service
	// and slo, others by alertname and service.
	groupBy := []string{"alertname", "service"}
	if labels["slo"] != "" {
		groupBy = []string{"service", "slo"}
	}
	group := map[string]string{}
	var parts []string
	for _, k := range groupBy {
		if v, ok := labels[k]; ok {
			group[k] = v
			parts = append(parts, fmt.Sprintf("%s=%q", k, v))
		}
	}
	sort.Strings(parts)
	msg := receiver.Message{
		Version:           receiver.SupportedVersion,
		GroupKey:          "{}/srectl:{" + strings.Join(parts, ", ") + "}",
		Status:            status,
		Receiver:          "sred",
		GroupLabels:       group,
		CommonLabels:      labels,
		CommonAnnotations: annotations,
		Alerts:            []receiver.Alert{a},
	}
	var res incident.IngestResult
	if err := o.call(http.MethodPost, receiver.Path, nil, hdr, msg, &res); err != nil {
		return err
	}
	verb := "fired"
	if resolve {
		verb = "resolved"
	}
	fmt.Fprintf(env.Stdout, "%s %s %s at %s", verb, labels["alertname"], model.LabelSet(ls).String(), now.Format(time.RFC3339))
	if len(res.Incidents) > 0 {
		fmt.Fprintf(env.Stdout, ": incident %s", strings.Join(res.Incidents, ", "))
	}
	fmt.Fprintln(env.Stdout)
	return nil
}

// firingSince returns the startsAt of the firing alert with fingerprint fp
// among sred's open incidents: a resolve names the alert it ends by
// fingerprint and start.
func (o alertOptions) firingSince(ls model.LabelSet, fp string) (time.Time, error) {
	var page incident.Page
	q := url.Values{"alerts": {"true"}, "limit": {"500"}}
	for _, st := range []incident.Status{incident.StatusTriggered, incident.StatusAcknowledged, incident.StatusInvestigating} {
		q.Add("status", string(st))
	}
	if err := o.get("/api/v1/incidents", q, nil, &page); err != nil {
		return time.Time{}, err
	}
	for _, inc := range page.Incidents {
		for _, a := range inc.Alerts {
			if a.Fingerprint == fp && a.Status == "firing" {
				return a.StartsAt, nil
			}
		}
	}
	// The labels, not the fingerprint alone: an alert is found by all of
	// them, so one label more or less (an alert of Alertmanager with its
	// team label, say) is another alert.
	// sred found no such alert: a not found, exit 4 as sred's 404s (it
	// exited 1 before, the code of an invalid file).
	return time.Time{}, &ExitError{Code: exitRefused, Err: fmt.Errorf("no open incident has a firing alert %s (fingerprint %s): srectl alert resolve ends the alert srectl alert fire sent with the same labels (-l)", ls, fp)}
}
