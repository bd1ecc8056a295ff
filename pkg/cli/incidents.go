package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/limits"
)

type incidentsOptions struct {
	sredAPI
	output   string
	actor    string
	status   []string
	service  string
	severity []string
	since    string
	limit    int
	offset   int
	id       string
	note     string
	assignee string
	snooze   string
	// list: the highest severity an incident had (peak_severity)
	peakSeverity []string
	// create
	title       string
	newService  string
	newSeverity string
	description string
	// split and merge
	groupKey string
	from     string
	// export and import
	exportSince string
	importFile  string
}

func init() {
	registerCommand(40, func(app *kingpin.Application) map[string]func(*Env) error {
		var o incidentsOptions
		cmd := app.Command("incidents", "List and act on sred incidents through the sred API.")
		o.flags(cmd)
		cmd.Flag("output", "Output format: table or json.").Short('o').Default("table").EnumVar(&o.output, "table", "json")
		cmd.Flag("actor", "Who acts (recorded in the timeline); defaults to $USER.").Default(defaultActor()).StringVar(&o.actor)

		list := cmd.Command("list", "List incidents, newest first.").Alias("ls")
		list.Flag("status", "Filter by status (repeatable): triggered, acknowledged, investigating, resolved, postmortem_done, open (the first three), all (the default).").StringsVar(&o.status)
		list.Flag("service", "Filter by service.").StringVar(&o.service)
		list.Flag("severity", "Filter by severity (repeatable): CRITICAL, HIGH, MEDIUM, LOW.").StringsVar(&o.severity)
		list.Flag("peak-severity", "Filter by the highest severity an incident had (repeatable): CRITICAL lists every incident that paged CRITICAL, also after its severity fell.").StringsVar(&o.peakSeverity)
		list.Flag("since", "Only incidents created within this duration (24h, 7d) or since this RFC 3339 time.").StringVar(&o.since)
		list.Flag("limit", "Page size.").Default("50").IntVar(&o.limit)
		list.Flag("offset", "Skip this many incidents.").Default("0").IntVar(&o.offset)

		show := cmd.Command("show", "Show an incident with its alerts and timeline.")
		show.Arg("id", "Incident ID (INC-2026-0001).").Required().StringVar(&o.id)

		ack := cmd.Command("ack", "Acknowledge a triggered incident.")
		ack.Arg("id", "Incident ID.").Required().StringVar(&o.id)

		inv := cmd.Command("investigate", "Start investigating an incident, assigning it.")
		inv.Arg("id", "Incident ID.").Required().StringVar(&o.id)
		inv.Flag("assignee", "Who investigates (defaults to the actor).").StringVar(&o.assignee)

		res := cmd.Command("resolve", "Resolve an open incident.")
		res.Arg("id", "Incident ID.").Required().StringVar(&o.id)
		res.Flag("note", "Resolution note.").Short('m').StringVar(&o.note)

		snz := cmd.Command("snooze", "Snooze an acknowledged incident: responders are notified again when the snooze ends and it is still open.")
		snz.Arg("id", "Incident ID.").Required().StringVar(&o.id)
		snz.Flag("for", "How long, as a Prometheus duration (30m, 2h, 1d).").Required().StringVar(&o.snooze)

		cre := cmd.Command("create", "Open an incident by hand (manual escalation): it pages like an alert-driven one.")
		cre.Flag("title", "Title of the incident.").Required().StringVar(&o.title)
		cre.Flag("service", "Affected service.").Required().StringVar(&o.newService)
		cre.Flag("severity", "Severity: CRITICAL, HIGH, MEDIUM or LOW.").Required().StringVar(&o.newSeverity)
		cre.Flag("description", "What is known so far (first timeline note).").StringVar(&o.description)

		spl := cmd.Command("split", "Move an alert group that correlation wrongly attached to an incident out into an incident of its own (which pages).")
		spl.Arg("id", "Incident ID.").Required().StringVar(&o.id)
		spl.Flag("group-key", "Alertmanager group key of the alert group (see `incidents show`).").Required().StringVar(&o.groupKey)

		mrg := cmd.Command("merge", "Merge an incident into another: its alerts and alert groups move, it is resolved as merged.")
		mrg.Arg("into", "Incident that remains.").Required().StringVar(&o.id)
		mrg.Arg("from", "Incident merged into it.").Required().StringVar(&o.from)

		exp := cmd.Command("export", "Write the incidents created since --since (all without it) as JSON lines to stdout, oldest first: to archive them, or to move them to another store.")
		exp.Flag("since", "A duration back from now (30d) or an RFC 3339 time.").StringVar(&o.exportSince)
		imp := cmd.Command("import", "Import incidents from JSON lines (an export, e.g. of a SQLite sred into a PostgreSQL one); incidents that exist are skipped.")
		imp.Arg("file", "File of JSON lines; - for stdin.").Required().StringVar(&o.importFile)

		return map[string]func(*Env) error{
			"incidents export": func(env *Env) error { return incidentsExport(env, o) },
			"incidents import": func(env *Env) error { return incidentsImport(env, o) },
			"incidents split":  func(env *Env) error { return incidentsSplit(env, o) },
			"incidents merge":  func(env *Env) error { return incidentsMerge(env, o) },
			"incidents create": func(env *Env) error { return incidentsCreate(env, o) },
			"incidents list":   func(env *Env) error { return incidentsList(env, o) },
			"incidents show":   func(env *Env) error { return incidentsShow(env, o) },
			"incidents ack":    func(env *Env) error { return incidentsAction(env, o, "ack", nil) },
			"incidents investigate": func(env *Env) error {
				return incidentsAction(env, o, "investigate", map[string]string{"assignee": o.assignee})
			},
			"incidents resolve": func(env *Env) error { return incidentsAction(env, o, "resolve", map[string]string{"note": o.note}) },
			"incidents snooze": func(env *Env) error {
				if _, err := model.ParseDuration(o.snooze); err != nil {
					// "30" without a unit, or "half an hour": say what is
					// wanted, the value cut as sred cuts what it echoes.
					return &ExitError{Code: exitUsage, Err: fmt.Errorf("--for: not a valid duration string: %s (want a number and a unit: 30m, 2h, 1d)", limits.Quote(o.snooze))}
				}
				return incidentsAction(env, o, "snooze", map[string]string{"duration": o.snooze})
			},
		}
	})
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func incidentsList(env *Env, o incidentsOptions) error {
	q := url.Values{}
	for _, s := range o.status {
		q.Add("status", s)
	}
	for _, s := range o.severity {
		q.Add("severity", s)
	}
	for _, s := range o.peakSeverity {
		q.Add("peak_severity", s)
	}
	if o.service != "" {
		q.Set("service", o.service)
	}
	if o.since != "" {
		since, err := sinceTime(o.since, time.Now())
		if err != nil {
			return err
		}
		q.Set("since", since)
	}
	q.Set("limit", fmt.Sprint(o.limit))
	q.Set("offset", fmt.Sprint(o.offset))
	var page incident.Page
	if err := o.call(http.MethodGet, "/api/v1/incidents", q, nil, nil, &page); err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(env.Stdout, page)
	}
	if len(page.Incidents) == 0 && page.Offset > 0 {
		// Past the end: a table header alone read as "no incidents".
		fmt.Fprintln(env.Stderr, pastEnd(page))
		return nil
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSEVERITY\tSTATUS\tSERVICE\tCREATED\tASSIGNEE\tTITLE")
	for _, inc := range page.Incidents {
		status := string(inc.Status)
		if inc.Flapping {
			status += " (flapping)"
		}
		if inc.RecoveringSince != nil && inc.Status.Open() {
			status += " (recovering)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", inc.ID, inc.SeverityText(), status, oneLine(inc.Service),
			inc.CreatedAt.UTC().Format("2006-01-02 15:04"), oneLine(dash(inc.Assignee)), oneLine(inc.Title))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if page.Total > page.Offset+len(page.Incidents) {
		fmt.Fprintf(env.Stdout, "(%d of %d shown; use --offset %d for more)\n", len(page.Incidents), page.Total, page.Offset+len(page.Incidents))
	}
	return nil
}

// pastEnd says that a page at an offset past the last incident is empty,
// and how many incidents the list has.
func pastEnd(page incident.Page) string {
	switch page.Total {
	case 0:
		return fmt.Sprintf("no incidents at offset %d: no incident matches", page.Offset)
	case 1:
		return fmt.Sprintf("no incidents at offset %d: 1 incident matches (at offset 0)", page.Offset)
	}
	return fmt.Sprintf("no incidents at offset %d: %d incidents match (offsets 0 to %d)", page.Offset, page.Total, page.Total-1)
}

// oneLine keeps a value on its line and in its column: a newline or tab
// in a label value (an incident's service, an alert group's key) is
// printed as \n or \t, as the timeline prints label values, instead of
// breaking the table or the field it is printed in.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\n\t") {
		return s
	}
	return strings.NewReplacer("\n", `\n`, "\t", `\t`).Replace(s)
}

// timelineIndent is the width of a timeline line's time, kind and actor
// columns, before its message.
const timelineIndent = 2 + 19 + 2 + 14 + 1 + 14 + 1

// indentLines indents the lines after the first of a timeline message (a
// note of several lines, a runbook step's output) to the message column,
// so that each reads as part of its entry, never as an entry of its own.
func indentLines(s string) string {
	if !strings.Contains(s, "\n") {
		return s
	}
	return strings.ReplaceAll(s, "\n", "\n"+strings.Repeat(" ", timelineIndent))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func incidentsShow(env *Env, o incidentsOptions) error {
	var inc incident.Incident
	if err := o.call(http.MethodGet, "/api/v1/incidents/"+url.PathEscape(o.id), nil, nil, nil, &inc); err != nil {
		return err
	}
	var tl []incident.TimelineEntry
	if err := o.call(http.MethodGet, "/api/v1/incidents/"+url.PathEscape(o.id)+"/timeline", nil, nil, nil, &tl); err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(env.Stdout, map[string]any{"incident": inc, "timeline": tl})
	}
	w := env.Stdout
	fmt.Fprintf(w, "%s [%s] %s\n", inc.ID, inc.SeverityText(), oneLine(inc.Title))
	fmt.Fprintf(w, "Status:    %s", inc.Status)
	if inc.Flapping {
		fmt.Fprint(w, " (flapping)")
	}
	if inc.RecoveringSince != nil && inc.Status.Open() {
		fmt.Fprint(w, " (recovering: the SLO stopped burning, escalation stopped)")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Service:   %s\n", oneLine(inc.Service))
	if len(inc.Services) > 1 {
		fmt.Fprintf(w, "Affected:  %s (likely root: %s)\n", oneLine(strings.Join(inc.Services, ", ")), oneLine(dash(inc.RootService)))
	}
	if inc.MergedInto != "" {
		fmt.Fprintf(w, "Merged:    into %s\n", inc.MergedInto)
	}
	fmt.Fprintf(w, "Assignee:  %s\n", oneLine(dash(inc.Assignee)))
	if inc.Impact != "" {
		fmt.Fprintf(w, "Impact:    %s\n", inc.Impact)
	}
	fmt.Fprintf(w, "Detected:  %s\n", inc.DetectedAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "Created:   %s\n", inc.CreatedAt.UTC().Format(time.RFC3339))
	for _, t := range []struct {
		name string
		at   *time.Time
	}{{"Acked:", inc.AcknowledgedAt}, {"Snoozed:", inc.SnoozedUntil}, {"Recovering:", inc.RecoveringSince}, {"Resolved:", inc.ResolvedAt}, {"Recovered:", inc.RecoveredAt}} {
		if t.at != nil {
			fmt.Fprintf(w, "%-10s %s\n", t.name, t.at.UTC().Format(time.RFC3339))
		}
	}
	for _, u := range inc.RunbookURLs {
		fmt.Fprintf(w, "Runbook:   %s\n", u)
	}
	if len(inc.Links) > 1 {
		fmt.Fprintf(w, "\nAlert groups (%d):\n", len(inc.Links))
		for _, l := range inc.Links {
			fmt.Fprintf(w, "  %-10s %-18s %s\n", oneLine(l.Service), l.Reason, oneLine(l.GroupKey))
		}
	}
	fmt.Fprintf(w, "\nAlerts (%d):\n", len(inc.Alerts))
	varying := varyingLabels(inc.Alerts)
	for _, a := range inc.Alerts {
		fmt.Fprintf(w, "  %-8s %s%s since %s\n", a.Status, oneLine(alertName(a)), alertLabels(a, varying), a.StartsAt.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "\nTimeline:\n")
	for _, e := range tl {
		fmt.Fprintf(w, "  %s  %-14s %-14s %s\n", e.Time.UTC().Format("2006-01-02 15:04:05"), e.Kind, oneLine(e.Actor), indentLines(e.Message))
	}
	return nil
}

func incidentsAction(env *Env, o incidentsOptions, action string, extra map[string]string) error {
	if o.actor == "" {
		return &ExitError{Code: exitUsage, Err: errors.New("no actor: set --actor or $USER")}
	}
	body := map[string]string{"actor": o.actor}
	for k, v := range extra {
		if v != "" {
			body[k] = v
		}
	}
	var inc incident.Incident
	if err := o.call(http.MethodPost, "/api/v1/incidents/"+url.PathEscape(o.id)+"/"+action, nil, nil, body, &inc); err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(env.Stdout, inc)
	}
	if action == "snooze" && inc.SnoozedUntil != nil {
		fmt.Fprintf(env.Stdout, "%s is %s, snoozed until %s\n", inc.ID, inc.Status, inc.SnoozedUntil.Format(time.RFC3339))
		return nil
	}
	fmt.Fprintf(env.Stdout, "%s is now %s\n", inc.ID, inc.Status)
	return nil
}

func incidentsCreate(env *Env, o incidentsOptions) error {
	if o.actor == "" {
		return &ExitError{Code: exitUsage, Err: errors.New("no actor: set --actor or $USER")}
	}
	if _, err := incident.ParseSeverity(o.newSeverity); err != nil {
		return &ExitError{Code: exitUsage, Err: fmt.Errorf("--severity: %w", err)}
	}
	body := map[string]string{"title": o.title, "service": o.newService, "severity": o.newSeverity, "actor": o.actor}
	if o.description != "" {
		body["description"] = o.description
	}
	var inc incident.Incident
	if err := o.call(http.MethodPost, "/api/v1/incidents", nil, nil, body, &inc); err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(env.Stdout, inc)
	}
	fmt.Fprintf(env.Stdout, "%s opened: [%s] %s (%s)\n", inc.ID, inc.Severity, inc.Title, inc.Status)
	return nil
}

func incidentsSplit(env *Env, o incidentsOptions) error {
	if o.actor == "" {
		return &ExitError{Code: exitUsage, Err: errors.New("no actor: set --actor or $USER")}
	}
	var res incident.SplitResult
	body := map[string]string{"actor": o.actor, "group_key": o.groupKey}
	if err := o.call(http.MethodPost, "/api/v1/incidents/"+url.PathEscape(o.id)+"/split", nil, nil, body, &res); err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(env.Stdout, res)
	}
	if res.Duplicate {
		fmt.Fprintf(env.Stdout, "alert group already split out of %s into %s (nothing changed)\n", o.id, res.Incident.ID)
		return nil
	}
	fmt.Fprintf(env.Stdout, "alert group split out of %s into %s: [%s] %s (%s)\n", o.id, res.Incident.ID,
		res.Incident.Severity, res.Incident.Title, res.Incident.Status)
	return nil
}

func incidentsMerge(env *Env, o incidentsOptions) error {
	if o.actor == "" {
		return &ExitError{Code: exitUsage, Err: errors.New("no actor: set --actor or $USER")}
	}
	var res incident.MergeResult
	body := map[string]string{"actor": o.actor, "from": o.from}
	if err := o.call(http.MethodPost, "/api/v1/incidents/"+url.PathEscape(o.id)+"/merge", nil, nil, body, &res); err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(env.Stdout, res)
	}
	if res.Duplicate {
		fmt.Fprintf(env.Stdout, "%s was already merged into %s (nothing changed)\n", o.from, o.id)
		return nil
	}
	fmt.Fprintf(env.Stdout, "%s merged into %s (services: %s; likely root: %s)\n", o.from, o.id,
		strings.Join(res.Incident.Services, ", "), dash(res.Incident.RootService))
	return nil
}

// alertName is an alert's name, with the SLO, tier and burn factor of the
// generated SLO alerts: "SLOBurnRatePage api/availability page_fast 14.4x".
// varyingLabels returns the names of the labels whose values are not the
// same on all the alerts (a label some alerts lack counts), sorted: those
// that tell the alerts of a group apart, such as instance.
func varyingLabels(alerts []incident.Alert) []string {
	if len(alerts) < 2 {
		return nil
	}
	var names []string
	seen := map[string]bool{}
	for _, a := range alerts {
		for k := range a.Labels {
			if seen[k] {
				continue
			}
			seen[k] = true
			v, ok := alerts[0].Labels[k]
			for _, b := range alerts[1:] {
				if w, has := b.Labels[k]; has != ok || w != v {
					names = append(names, k)
					break
				}
			}
		}
	}
	sort.Strings(names)
	return names
}

// alertLabels renders the varying labels of an alert that alertName does
// not already print, as {instance="db-1", path="/data"}, or "" when none.
func alertLabels(a incident.Alert, varying []string) string {
	var parts []string
	for _, k := range varying {
		v, ok := a.Labels[k]
		if !ok || k == "alertname" || (k == "burn_tier" && v != "") || (a.Labels["slo"] != "" && (k == "slo" || k == "service")) {
			continue
		}
		parts = append(parts, k+"="+strconv.Quote(v))
	}
	if len(parts) == 0 {
		return ""
	}
	return " {" + strings.Join(parts, ", ") + "}"
}

func alertName(a incident.Alert) string {
	parts := []string{a.Labels["alertname"]}
	if s := a.Labels["slo"]; s != "" {
		parts = append(parts, a.Labels["service"]+"/"+s)
	}
	if t := a.Labels["burn_tier"]; t != "" {
		parts = append(parts, t)
	}
	if f := a.Annotations[incident.AnnotationBurnRate]; f != "" {
		parts = append(parts, f+"x")
	}
	return strings.Join(parts, " ")
}
