package cli

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/change"
)

func init() {
	registerCommand(65, func(app *kingpin.Application) map[string]func(*Env) error {
		cmd := app.Command("change", "Record deployments and infrastructure changes (gated by the deploy gate) and list them: the DORA measures' input.")
		var (
			rec                         sredAPI
			req                         change.Request
			commitTime, started, output string
			finished                    string
			token, tokenFile            string
		)
		record := cmd.Command("record", "Record a change of a service: the deploy gate answers first; a denied change is recorded as refused and exits 1 (3 when sred is unreachable or fails, 4 when it refuses the request).")
		rec.flags(record)
		record.Flag("service", "Service changed.").Required().StringVar(&req.Service)
		record.Flag("kind", "Kind of change: deploy, config or infra.").Default(string(change.KindDeploy)).EnumVar(&req.Kind, "deploy", "config", "infra")
		record.Flag("commit", "Commit shipped.").StringVar(&req.Commit)
		record.Flag("commit-time", "When the commit was made (RFC 3339): the lead time for changes starts there.").StringVar(&commitTime)
		record.Flag("started-at", "When the change started (RFC 3339; now by default).").StringVar(&started)
		record.Flag("finished-at", "When the change finished (RFC 3339; now by default): required for a change recorded after the fact, started more than 24 hours ago.").StringVar(&finished)
		record.Flag("outcome", "succeeded, in_progress (finish it with `srectl change finish`), failed or rolled_back.").Default(string(change.Succeeded)).
			EnumVar(&req.Outcome, "succeeded", "in_progress", "failed", "rolled_back")
		record.Flag("release", "Version or release shipped (recorded as the change's version).").StringVar(&req.Version)
		record.Flag("description", "What changed.").StringVar(&req.Description)
		record.Flag("key", "Idempotency key (e.g. the CI job's id): a retry with the key of a recorded change records nothing.").StringVar(&req.Key)
		record.Flag("source", "Tool that made the change (ci, terraform, argocd, flux, ...).").Default("srectl").StringVar(&req.Source)
		record.Flag("actor", "Who made it (recorded); defaults to $USER.").Default(defaultActor()).StringVar(&req.Actor)
		record.Flag("change", "The gate's kind of change: normal or critical (critical changes ship while the budget is red).").Default(budget.ChangeNormal).EnumVar(&req.Change, budget.ChangeNormal, budget.ChangeCritical)
		record.Flag("override-token", "Emergency override token: the change ships whatever the budget, and the override is recorded.").Envar("SRECTL_GATE_OVERRIDE_TOKEN").StringVar(&token)
		record.Flag("override-token-file", "Read the emergency override token from a file.").StringVar(&tokenFile)
		record.Flag("reason", "Why the override is needed (required with an override).").StringVar(&req.OverrideReason)
		record.Flag("output", "Output format: text or json.").Short('o').Default("text").EnumVar(&output, "text", "json")

		var (
			fin      sredAPI
			finID    int64
			finOut   string
			finFmt   string
			lst      sredAPI
			lstQuery struct {
				service, kind, outcome, since string
				limit                         int
			}
			lstFmt string
		)
		finish := cmd.Command("finish", "Finish an in-progress change with its outcome.")
		fin.flags(finish)
		finish.Arg("id", "Change id.").Required().SetValue(&idValue{n: &finID, what: "change id"})
		finish.Flag("outcome", "succeeded, failed or rolled_back.").Required().EnumVar(&finOut, "succeeded", "failed", "rolled_back")
		finish.Flag("output", "Output format: text or json.").Short('o').Default("text").EnumVar(&finFmt, "text", "json")

		list := cmd.Command("list", "List recorded changes, newest first, with the incidents linked to them.")
		lst.flags(list)
		list.Flag("service", "Only this service.").StringVar(&lstQuery.service)
		list.Flag("kind", "Only this kind: deploy, config or infra.").EnumVar(&lstQuery.kind, "deploy", "config", "infra")
		list.Flag("outcome", "Only this outcome.").EnumVar(&lstQuery.outcome, "in_progress", "succeeded", "failed", "rolled_back", "refused")
		list.Flag("since", "Only changes started since (RFC 3339 or unix seconds).").StringVar(&lstQuery.since)
		list.Flag("limit", "At most this many changes.").Default("50").IntVar(&lstQuery.limit)
		list.Flag("output", "Output format: text or json.").Short('o').Default("text").EnumVar(&lstFmt, "text", "json")

		return map[string]func(*Env) error{
			"change record": func(env *Env) error {
				for _, t := range []struct {
					flag, v string
					into    **time.Time
				}{{"--commit-time", commitTime, &req.CommitTime}, {"--started-at", started, &req.StartedAt}, {"--finished-at", finished, &req.FinishedAt}} {
					if t.v == "" {
						continue
					}
					v, err := time.Parse(time.RFC3339, t.v)
					if err != nil {
						return &ExitError{Code: 2, Err: fmt.Errorf("%s must be RFC 3339 (2026-12-03T09:12:00Z), got %q", t.flag, t.v)}
					}
					*t.into = &v
				}
				tok, err := readToken(token, tokenFile)
				if err != nil {
					return err
				}
				if tok != "" && req.OverrideReason == "" {
					return &ExitError{Code: 2, Err: errors.New("--reason is required with an override token")}
				}
				hdr := http.Header{}
				if tok != "" {
					hdr.Set(budget.OverrideHeader, tok)
				}
				var c change.Change
				err = rec.call(http.MethodPost, "/api/v1/changes", nil, hdr, req, &c)
				var ae *apiError
				if errors.As(err, &ae) && ae.code == http.StatusConflict && ae.errorType == "refused" {
					// The deploy gate denied: a verdict, exit 1 as
					// `srectl gate`; any other refusal exits 4.
					fmt.Fprintln(env.Stdout, "refused:", ae.msg)
					return errDenied
				}
				if err != nil {
					return err
				}
				return printChange(env.Stdout, output, c)
			},
			"change finish": func(env *Env) error {
				var c change.Change
				if err := fin.call(http.MethodPost, "/api/v1/changes/"+strconv.FormatInt(finID, 10)+"/finish", nil, nil, change.FinishRequest{Outcome: finOut}, &c); err != nil {
					return err
				}
				return printChange(env.Stdout, finFmt, c)
			},
			"change list": func(env *Env) error {
				q := url.Values{"limit": {strconv.Itoa(lstQuery.limit)}}
				for k, v := range map[string]string{"service": lstQuery.service, "kind": lstQuery.kind, "outcome": lstQuery.outcome, "since": lstQuery.since} {
					if v != "" {
						q.Set(k, v)
					}
				}
				var l change.List
				if err := lst.get("/api/v1/changes", q, nil, &l); err != nil {
					return err
				}
				if lstFmt == "json" {
					return printJSON(env.Stdout, l)
				}
				tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tSERVICE\tKIND\tOUTCOME\tFAILED\tSTARTED\tVERSION\tCOMMIT\tLEAD TIME\tINCIDENTS")
				for _, c := range l.Changes {
					lead := "-"
					if c.LeadTime != nil {
						lead = (time.Duration(*c.LeadTime) * time.Second).String()
					}
					incs := "-"
					if len(c.Incidents) > 0 {
						incs = ""
						for i, in := range c.Incidents {
							if i > 0 {
								incs += ","
							}
							incs += in.IncidentID
						}
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%t\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Service, c.Kind, c.Outcome, c.Failed,
						c.StartedAt.Format(time.RFC3339), dash(c.Version), dash(c.Commit), lead, incs)
				}
				return tw.Flush()
			},
		}
	})
}

func printChange(w io.Writer, format string, c change.Change) error {
	if format == "json" {
		return printJSON(w, c)
	}
	fmt.Fprintf(w, "change %d: %s %s of %s", c.ID, c.Outcome, c.Kind, c.Service)
	if c.Gate != nil {
		fmt.Fprintf(w, " (gate %s: %s)", c.Gate.Decision, c.Gate.Reason)
	}
	fmt.Fprintln(w)
	return nil
}
