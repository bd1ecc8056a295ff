package cli

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/alecthomas/kingpin/v2"

	"github.com/rootuip/sre/pkg/chaos"
)

type chaosOptions struct {
	api     sredAPI
	output  string
	files   []string
	name    string
	id      string
	format  string
	limit   int
	comment string
}

func init() {
	registerCommand(63, func(app *kingpin.Application) map[string]func(*Env) error {
		o := &chaosOptions{}
		cmd := app.Command("chaos", "Chaos experiments: validate experiment files offline; plan, run, watch, stop and report them through the sred API.")
		o.api.flags(cmd)
		cmd.Flag("output", "Output format: table or json.").Short('o').Default("table").EnumVar(&o.output, "table", "json")

		validate := cmd.Command("validate", "Check experiment files (strict YAML, fault parameters, PromQL); exits 1 on the first invalid file.")
		validate.Arg("files", "Experiment files.").Required().StringsVar(&o.files)

		plan := cmd.Command("plan", "Show what a loaded experiment would do and whether sred would refuse it now.")
		plan.Arg("experiment", "Experiment name.").Required().StringVar(&o.name)

		run := cmd.Command("run", "Start a loaded experiment (admin). Exits 4 when refused, with the reasons.")
		run.Arg("experiment", "Experiment name.").Required().StringVar(&o.name)

		status := cmd.Command("status", "Show a run with its steps and faults, or the latest runs.")
		status.Arg("run", "Run ID (omit to list runs).").StringVar(&o.id)
		status.Flag("limit", "Maximum number of runs listed.").Default("20").IntVar(&o.limit)

		stop := cmd.Command("stop", "Stop a run: it aborts and rolls every fault back (admin).")
		stop.Arg("run", "Run ID.").Required().StringVar(&o.id)

		approve := cmd.Command("approve", "Approve a run waiting for approval (experiments with approval:; the role the experiment names).")
		approve.Arg("run", "Run ID.").Required().StringVar(&o.id)
		approve.Flag("comment", "Why it may go ahead (recorded with the approval).").StringVar(&o.comment)

		cmd.Command("halt", "Stop every running experiment at once and roll every fault back (admin; idempotent).")

		report := cmd.Command("report", "Print the report of a finished run.")
		report.Arg("run", "Run ID.").Required().StringVar(&o.id)
		report.Flag("format", "markdown or json.").Default("markdown").EnumVar(&o.format, "markdown", "json")

		return map[string]func(*Env) error{
			"chaos validate": func(env *Env) error { return chaosValidate(env, o) },
			"chaos plan":     func(env *Env) error { return chaosPlan(env, o) },
			"chaos run":      func(env *Env) error { return chaosRun(env, o) },
			"chaos status":   func(env *Env) error { return chaosStatus(env, o) },
			"chaos stop": func(env *Env) error {
				return o.api.call(http.MethodPost, "/api/v1/chaos/runs/"+url.PathEscape(o.id)+"/stop", nil, nil, nil, nil)
			},
			"chaos approve": func(env *Env) error { return chaosApprove(env, o) },
			"chaos halt": func(env *Env) error {
				var res chaos.HaltResult
				if err := o.api.call(http.MethodPost, "/api/v1/chaos/halt", nil, nil, nil, &res); err != nil {
					return err
				}
				fmt.Fprintf(env.Stdout, "halt: %s stopped; every fault rolled back\n", count(res.Stopped, "running experiment", "running experiments"))
				return nil
			},
			"chaos report": func(env *Env) error { return chaosReport(env, o) },
		}
	})
}

func chaosValidate(env *Env, o *chaosOptions) error {
	for _, f := range o.files {
		e, err := chaos.LoadFile(f)
		if err != nil {
			return &ExitError{Code: 1, Err: err}
		}
		fmt.Fprintf(env.Stdout, "%s: experiment %s is valid (%s on %s in %s for %s)\n", f, e.Name, count(len(e.Faults), "fault", "faults"),
			e.Target.Service, e.Target.Environment, e.Duration)
	}
	return nil
}

func chaosPlan(env *Env, o *chaosOptions) error {
	var p chaos.Plan
	if err := o.api.get("/api/v1/chaos/experiments/"+url.PathEscape(o.name)+"/plan", nil, nil, &p); err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(env.Stdout, p)
	}
	fmt.Fprintf(env.Stdout, "Experiment %s on %s/%s (%d of %s) for %s\n", p.Experiment, p.Target.Environment, p.Target.Service,
		p.Target.Instances, count(p.Target.Total, "instance", "instances"), p.Duration)
	for _, f := range p.Faults {
		fmt.Fprintf(env.Stdout, "  fault %s (%s via %s): %s\n", f.Name, f.Type, f.Driver, f.Description)
	}
	fmt.Fprintf(env.Stdout, "Steady state: %s\nAbort when: %s\n", strings.Join(p.Probes, ", "), strings.Join(p.Abort, "; "))
	if len(p.Refusal) > 0 {
		fmt.Fprintf(env.Stdout, "Would be REFUSED now:\n  - %s\n", strings.Join(p.Refusal, "\n  - "))
	} else {
		fmt.Fprintln(env.Stdout, "Safety checks pass now.")
	}
	return nil
}

func chaosRun(env *Env, o *chaosOptions) error {
	var info chaos.RunInfo
	err := o.api.call(http.MethodPost, "/api/v1/chaos/experiments/"+url.PathEscape(o.name)+"/run", nil, nil, nil, &info)
	var ae *apiError
	if errors.As(err, &ae) && ae.code == http.StatusConflict {
		// The answer's error lists the reasons ("refused: a; b").
		return &ExitError{Code: 4, Err: fmt.Errorf("experiment %s refused: %s", o.name, strings.TrimPrefix(ae.msg, "refused: "))}
	}
	if err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(env.Stdout, info)
	}
	fmt.Fprintf(env.Stdout, "started run %s of %s (srectl chaos status %s)\n", info.ID, info.Experiment, info.ID)
	return nil
}

func chaosStatus(env *Env, o *chaosOptions) error {
	if o.id == "" {
		var runs []chaos.RunInfo
		if err := o.api.get("/api/v1/chaos/runs", url.Values{"limit": {fmt.Sprint(o.limit)}}, nil, &runs); err != nil {
			return err
		}
		if o.output == "json" {
			return printJSON(env.Stdout, runs)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "RUN\tEXPERIMENT\tTARGET\tSTATUS\tSTARTED\tSCORE\tREASON")
		for _, r := range runs {
			score := "-"
			if r.Score != nil {
				score = fmt.Sprintf("%.1f", *r.Score)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%s\t%s\t%s\t%s\n", r.ID, r.Experiment, r.Environment, r.Service, r.Status,
				r.Started.Format("2006-01-02 15:04:05"), score, dashIfEmpty(r.Reason))
		}
		return tw.Flush()
	}
	var r chaos.RunInfo
	if err := o.api.get("/api/v1/chaos/runs/"+url.PathEscape(o.id), nil, nil, &r); err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(env.Stdout, r)
	}
	fmt.Fprintf(env.Stdout, "Run %s of %s on %s/%s: %s %s\n", r.ID, r.Experiment, r.Environment, r.Service, r.Status, r.Reason)
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tSTATUS\tSTARTED\tFINISHED\tDETAIL")
	for _, s := range r.Steps {
		fin := "-"
		if s.Finished != nil {
			fin = s.Finished.Format("15:04:05")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.Status, s.Started.Format("15:04:05"), fin, s.Detail)
	}
	fmt.Fprintln(tw, "\nFAULT\tTYPE\tDRIVER\tSTATUS\t")
	for _, f := range r.Faults {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", f.Name, f.Fault.Type, f.Driver, f.Status)
	}
	return tw.Flush()
}

func chaosReport(env *Env, o *chaosOptions) error {
	var rep chaos.Report
	if err := o.api.get("/api/v1/chaos/runs/"+url.PathEscape(o.id)+"/report", nil, nil, &rep); err != nil {
		return err
	}
	if o.format == "json" {
		return printJSON(env.Stdout, rep)
	}
	_, err := io.WriteString(env.Stdout, chaos.Markdown(rep))
	return err
}

func chaosApprove(env *Env, o *chaosOptions) error {
	var r chaos.RunInfo
	body := map[string]string{"comment": o.comment}
	if err := o.api.call(http.MethodPost, "/api/v1/chaos/runs/"+url.PathEscape(o.id)+"/approve", nil, nil, body, &r); err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(env.Stdout, r)
	}
	by := "-"
	if r.Approval != nil {
		by = r.Approval.By
	}
	fmt.Fprintf(env.Stdout, "run %s of %s approved by %s; it goes on (srectl chaos status %s)\n", r.ID, r.Experiment, by, r.ID)
	return nil
}
