package cli

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"

	sredapp "github.com/rootuip/sre/pkg/app"
	"github.com/rootuip/sre/pkg/runbook"
)

type runbookOptions struct {
	api      incidentsOptions
	files    []string
	cfgFile  string
	incident string
	runbook  string
	status   string
	limit    int
	id       int64
	comment  string
	reason   string
}

func init() {
	registerCommand(55, func(app *kingpin.Application) map[string]func(*Env) error {
		var o runbookOptions
		cmd := app.Command("runbook", "Runbook automation: validate runbook files offline, list runs and act on them through the sred API.")
		o.api.flags(cmd)
		cmd.Flag("output", "Output format: table or json.").Short('o').Default("table").EnumVar(&o.api.output, "table", "json")
		cmd.Flag("actor", "Who acts (recorded in the audit log); defaults to $USER.").Default(defaultActor()).StringVar(&o.api.actor)

		validate := cmd.Command("validate", "Check runbook files (strict YAML, matchers, templates and allow-lists, PromQL); exits 1 on the first invalid file.")
		validate.Arg("files", "Runbook files.").StringsVar(&o.files)
		validate.Flag("config.file", "sred configuration file: validate the runbooks it names, against its http_endpoints.").StringVar(&o.cfgFile)

		cmd.Command("list", "List the runbooks sred has loaded.").Alias("ls")

		runs := cmd.Command("runs", "List runbook runs, newest first.")
		runs.Flag("incident", "Filter by incident ID.").StringVar(&o.incident)
		runs.Flag("runbook", "Filter by runbook name.").StringVar(&o.runbook)
		runs.Flag("status", "Filter by status (pending, running, waiting_approval, succeeded, failed, cancelled, interrupted, rate_limited, skipped, rejected).").StringVar(&o.status)
		runs.Flag("limit", "Maximum number of runs.").Default("50").IntVar(&o.limit)

		show := cmd.Command("show", "Show a run with its audit log.")
		show.Arg("id", "Run ID.").Required().SetValue(&idValue{n: &o.id, what: "run ID"})

		approve := cmd.Command("approve", "Approve the approval step a run is waiting on.")
		approve.Arg("id", "Run ID.").Required().SetValue(&idValue{n: &o.id, what: "run ID"})
		approve.Flag("comment", "Comment kept in the audit log.").Short('m').StringVar(&o.comment)

		cancel := cmd.Command("cancel", "Cancel a pending or running run.")
		cancel.Arg("id", "Run ID.").Required().SetValue(&idValue{n: &o.id, what: "run ID"})
		cancel.Flag("reason", "Why.").Short('m').StringVar(&o.reason)

		ks := cmd.Command("kill-switch", "Show, engage (on) or release (off) the kill switch that stops all runbook automation.")
		ksState := ks.Arg("state", "on or off; omit to show.").Enum("on", "off")
		ks.Flag("reason", "Why.").Short('m').StringVar(&o.reason)

		return map[string]func(*Env) error{
			"runbook validate": func(env *Env) error { return runbookValidate(env, o) },
			"runbook list":     func(env *Env) error { return runbookList(env, o) },
			"runbook runs":     func(env *Env) error { return runbookRuns(env, o) },
			"runbook show":     func(env *Env) error { return runbookShow(env, o) },
			"runbook approve": func(env *Env) error {
				return runbookAct(env, o, "approve", runbook.ApproveRequest{By: o.api.actor, Comment: o.comment})
			},
			"runbook cancel": func(env *Env) error {
				return runbookAct(env, o, "cancel", runbook.CancelRequest{By: o.api.actor, Reason: o.reason})
			},
			"runbook kill-switch": func(env *Env) error { return runbookKillSwitch(env, o, *ksState) },
		}
	})
}

func runbookValidate(env *Env, o runbookOptions) error {
	if len(o.files) == 0 && o.cfgFile == "" {
		return &ExitError{Code: 2, Err: errors.New("name runbook files or --config.file")}
	}
	cfg := runbook.DefaultConfig
	var set *runbook.Set
	if o.cfgFile != "" {
		// Loading sred.yml parses the runbooks it names.
		c, err := sredapp.LoadConfig(o.cfgFile)
		if err != nil {
			return &ExitError{Code: 1, Err: err}
		}
		rc := sredapp.Runbooks.Of(c)
		cfg, set = rc.Config, rc.Set
	}
	var rbs []*runbook.Runbook
	var files []string
	for _, f := range o.files {
		// A directory stands for its *.yml and *.yaml files, as srectl
		// validate takes a directory of SLO specs.
		if fi, err := os.Stat(f); err == nil && fi.IsDir() {
			var in []string
			for _, pat := range []string{"*.yml", "*.yaml"} {
				m, _ := filepath.Glob(filepath.Join(f, pat))
				in = append(in, m...)
			}
			if len(in) == 0 {
				return &ExitError{Code: 1, Err: fmt.Errorf("%s: no .yml or .yaml runbook file in the directory", f)}
			}
			sort.Strings(in)
			files = append(files, in...)
			continue
		}
		files = append(files, f)
	}
	for _, f := range files {
		rb, err := runbook.LoadFile(f)
		if err != nil {
			return &ExitError{Code: 1, Err: err}
		}
		rbs = append(rbs, rb)
	}
	if set != nil {
		rbs = append(rbs, set.List()...)
	}
	if o.cfgFile != "" || len(cfg.HTTPEndpoints) > 0 {
		if _, err := runbook.NewSet(cfg, rbs...); err != nil {
			return &ExitError{Code: 1, Err: err}
		}
	}
	for _, rb := range rbs {
		fmt.Fprintf(env.Stdout, "%s: runbook %s OK (%s)\n", rb.File, rb.Name, count(len(rb.Steps), "step", "steps"))
	}
	return nil
}

func runbookList(env *Env, o runbookOptions) error {
	var out []runbook.RunbookInfo
	if err := o.api.call("GET", "/api/v1/runbooks", nil, nil, nil, &out); err != nil {
		return err
	}
	if o.api.output == "json" {
		return printJSON(env.Stdout, out)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTEPS\tDRY-RUN\tAPPROVAL\tFILE")
	for _, r := range out {
		fmt.Fprintf(tw, "%s\t%d\t%v\t%v\t%s\n", r.Name, len(r.Steps), r.DryRun, r.RequireApproval, r.File)
	}
	return tw.Flush()
}

func runbookRuns(env *Env, o runbookOptions) error {
	q := url.Values{}
	for k, v := range map[string]string{"incident": o.incident, "runbook": o.runbook, "status": o.status} {
		if v != "" {
			q.Set(k, v)
		}
	}
	q.Set("limit", strconv.Itoa(o.limit))
	var out []runbook.Run
	if err := o.api.call("GET", "/api/v1/runbooks/runs", q, nil, nil, &out); err != nil {
		return err
	}
	if o.api.output == "json" {
		return printJSON(env.Stdout, out)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tINCIDENT\tRUNBOOK\tTARGET\tSTATUS\tCREATED\tREASON")
	for _, r := range out {
		status := r.Status
		if r.DryRun {
			status += " (dry-run)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.IncidentID, r.Runbook, r.Target, status,
			r.CreatedAt.Format(time.RFC3339), dash(r.Reason))
	}
	return tw.Flush()
}

func runbookShow(env *Env, o runbookOptions) error {
	var r runbook.Run
	if err := o.api.call("GET", fmt.Sprintf("/api/v1/runbooks/runs/%d", o.id), nil, nil, nil, &r); err != nil {
		return err
	}
	if o.api.output == "json" {
		return printJSON(env.Stdout, r)
	}
	status := r.Status
	if r.DryRun {
		status += " (dry-run)"
	}
	if r.Reason != "" {
		status += ": " + r.Reason
	}
	fmt.Fprintf(env.Stdout, "Run %d: runbook %s for %s on %s: %s\n", r.ID, r.Runbook, r.IncidentID, r.Target, status)
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tEVENT\tSTEP\tSTATUS\tDURATION\tEXIT\tERROR")
	for _, a := range r.Audit {
		exit := "-"
		if a.ExitCode != nil {
			exit = strconv.Itoa(*a.ExitCode)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Time.Format(time.RFC3339), a.Event, dash(a.StepName), a.Status, a.Duration, exit, dash(a.Error))
	}
	return tw.Flush()
}

func runbookAct(env *Env, o runbookOptions, action string, body any) error {
	var r runbook.Run
	if err := o.api.call("POST", fmt.Sprintf("/api/v1/runbooks/runs/%d/%s", o.id, action), nil, nil, body, &r); err != nil {
		return err
	}
	done := map[string]string{"approve": "approved", "cancel": "cancellation requested"}[action]
	if r.Status == runbook.RunCancelled {
		done = "cancelled"
	}
	fmt.Fprintf(env.Stdout, "Run %d (%s for %s): %s\n", r.ID, r.Runbook, r.IncidentID, done)
	return nil
}

func runbookKillSwitch(env *Env, o runbookOptions, state string) error {
	var ks runbook.KillSwitch
	var err error
	if state == "" {
		err = o.api.call("GET", "/api/v1/runbooks/kill-switch", nil, nil, nil, &ks)
	} else {
		on := state == "on"
		err = o.api.call("PUT", "/api/v1/runbooks/kill-switch", nil, nil,
			runbook.KillSwitchRequest{Enabled: &on, By: o.api.actor, Reason: o.reason}, &ks)
	}
	if err != nil {
		return err
	}
	if o.api.output == "json" {
		return printJSON(env.Stdout, ks)
	}
	if ks.Enabled {
		fmt.Fprintf(env.Stdout, "Kill switch ENGAGED by %s at %s: %s\n", ks.By, ks.UpdatedAt.Format(time.RFC3339), ks.Reason)
	} else {
		fmt.Fprintln(env.Stdout, "Kill switch released: runbook automation runs.")
	}
	return nil
}
