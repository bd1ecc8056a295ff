package cli

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/rootuip/sre/pkg/rollout"
)

type rolloutOptions struct {
	api     sredAPI
	output  string
	files   []string
	name    string
	version string
	stable  string
	id      string
	reason  string
	active  bool
	limit   int
}

func init() {
	registerCommand(65, func(app *kingpin.Application) map[string]func(*Env) error {
		o := &rolloutOptions{}
		cmd := app.Command("rollout", "Rollouts without Kubernetes: canary stages or blue-green, run by sred's stage runner (docs/rollout-runner.md).")
		o.api.flags(cmd)
		cmd.Flag("output", "Output format: table or json.").Short('o').Default("table").EnumVar(&o.output, "table", "json")

		validate := cmd.Command("validate", "Check rollout definition files offline (strict YAML, stages, actions and the shell guard); exits 1 on the first invalid file.")
		validate.Arg("files", "Rollout definition files.").Required().StringsVar(&o.files)

		run := cmd.Command("run", "Start a rollout of a loaded definition (admin): the deploy gate answers first. Exits 4 when denied or refused, with the reason.")
		run.Arg("definition", "Definition name (GET /api/v1/rollouts/definitions).").Required().StringVar(&o.name)
		run.Arg("version", "The new version.").Required().StringVar(&o.version)
		run.Flag("stable", "The version serving now (default: the version of the definition's last successful rollout).").StringVar(&o.stable)

		status := cmd.Command("status", "Show a rollout with its stages and history, or list rollouts.")
		status.Arg("rollout", "Rollout ID (omit to list rollouts).").StringVar(&o.id)
		status.Flag("active", "List only running and paused rollouts.").BoolVar(&o.active)
		status.Flag("limit", "Maximum number of rollouts listed.").Default("20").IntVar(&o.limit)

		for _, op := range []struct{ name, help string }{
			{"promote", "Move a running or paused rollout to its next stage now, skipping the rest of the current stage and its analysis (admin)."},
			{"pause", "Pause a running rollout where it is; promote goes on, abort rolls back (responder)."},
			{"abort", "Roll a running or paused rollout back (responder)."},
		} {
			c := cmd.Command(op.name, op.help)
			c.Arg("rollout", "Rollout ID.").Required().StringVar(&o.id)
			c.Flag("reason", "Why (recorded in the rollout's history).").StringVar(&o.reason)
		}

		opRun := func(op string) func(env *Env) error {
			return func(env *Env) error { return rolloutOp(env, o, op) }
		}
		return map[string]func(*Env) error{
			"rollout validate": func(env *Env) error { return rolloutValidate(env, o) },
			"rollout run":      func(env *Env) error { return rolloutRun(env, o) },
			"rollout status":   func(env *Env) error { return rolloutStatus(env, o) },
			"rollout promote":  opRun("promote"),
			"rollout pause":    opRun("pause"),
			"rollout abort":    opRun("abort"),
		}
	})
}

func rolloutValidate(env *Env, o *rolloutOptions) error {
	for _, f := range o.files {
		defs, err := rollout.Load([]string{f}, nil)
		if err != nil {
			return &ExitError{Code: 1, Err: err}
		}
		for _, d := range defs {
			fmt.Fprintf(env.Stdout, "%s: rollout %s is valid (%s of %s in %s, %s)\n", f, d.Name, d.Strategy(), d.Service, d.Environment, count(len(d.Plan()), "stage", "stages"))
		}
	}
	return nil
}

func rolloutRun(env *Env, o *rolloutOptions) error {
	var ro rollout.Rollout
	err := o.api.call(http.MethodPost, "/api/v1/rollouts", nil, nil, rollout.StartRequest{Name: o.name, Version: o.version, Stable: o.stable}, &ro)
	var ae *apiError
	if errors.As(err, &ae) && ae.code == http.StatusConflict {
		return &ExitError{Code: 4, Err: errors.New(ae.msg)}
	}
	if err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(env.Stdout, ro)
	}
	fmt.Fprintf(env.Stdout, "started rollout %d of %s %s (stable %s) (srectl rollout status %d)\n", ro.ID, ro.Service, ro.Version, ro.Stable, ro.ID)
	return nil
}

func rolloutID(s string) (string, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err != nil || n <= 0 {
		return "", &ExitError{Code: 2, Err: fmt.Errorf("rollout ID %q: want a positive integer", s)}
	}
	return url.PathEscape(s), nil
}

func rolloutOp(env *Env, o *rolloutOptions, op string) error {
	id, err := rolloutID(o.id)
	if err != nil {
		return err
	}
	var ro rollout.Rollout
	if err := o.api.call(http.MethodPost, "/api/v1/rollouts/"+id+"/"+op, nil, nil, rollout.OpRequest{Reason: o.reason}, &ro); err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(env.Stdout, ro)
	}
	fmt.Fprintf(env.Stdout, "rollout %d: %s, stage %s, weight %d%%\n", ro.ID, ro.State, stageOf(&ro), ro.Weight)
	return nil
}

func stageOf(ro *rollout.Rollout) string {
	if ro.Stage >= 0 && ro.Stage < len(ro.Stages) {
		return ro.Stages[ro.Stage].Name
	}
	return "-"
}

func rolloutStatus(env *Env, o *rolloutOptions) error {
	if o.id == "" {
		q := url.Values{"limit": {fmt.Sprint(o.limit)}}
		if o.active {
			q.Set("active", "true")
		}
		var list []rollout.Rollout
		if err := o.api.get("/api/v1/rollouts", q, nil, &list); err != nil {
			return err
		}
		if o.output == "json" {
			return printJSON(env.Stdout, list)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ROLLOUT\tDEFINITION\tSERVICE\tVERSION\tSTATE\tSTAGE\tWEIGHT\tSTARTED\tREASON")
		for _, r := range list {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d%%\t%s\t%s\n", r.ID, r.Name, r.Service, r.Version, r.State, stageOf(&r), r.Weight,
				r.Created.Format("2006-01-02 15:04:05"), dashIfEmpty(r.Reason))
		}
		return tw.Flush()
	}
	id, err := rolloutID(o.id)
	if err != nil {
		return err
	}
	var r rollout.Rollout
	if err := o.api.get("/api/v1/rollouts/"+id, nil, nil, &r); err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(env.Stdout, r)
	}
	fmt.Fprintf(env.Stdout, "Rollout %d of %s (%s): %s %s -> %s, %s, stage %s, weight %d%%\n", r.ID, r.Service, r.Strategy, r.Name, r.Stable, r.Version,
		r.State, stageOf(&r), r.Weight)
	if r.Reason != "" {
		fmt.Fprintf(env.Stdout, "Reason: %s\n", r.Reason)
	}
	switch {
	case r.Due == nil || r.State != rollout.StateRunning:
	case r.NoDataSince != nil:
		fmt.Fprintf(env.Stdout, "Waiting for data since %s; next analysis: %s\n", r.NoDataSince.Format(time.RFC3339), r.Due.Format(time.RFC3339))
	default:
		fmt.Fprintf(env.Stdout, "Stage ends: %s\n", r.Due.Format(time.RFC3339))
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STAGE\tWEIGHT\tDURATION\tANALYSIS\t")
	for i, s := range r.Stages {
		mark := ""
		if i == r.Stage {
			mark = " <"
		}
		fmt.Fprintf(tw, "%s%s\t%d%%\t%s\t%v\t\n", s.Name, mark, s.Weight, s.Duration, s.Analyze)
	}
	fmt.Fprintln(tw, "\nTIME\tEVENT\tSTATUS\tACTOR\tMESSAGE")
	for _, e := range r.Events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Time.Format("15:04:05"), e.Kind, e.Status, e.Actor, e.Message)
	}
	return tw.Flush()
}
