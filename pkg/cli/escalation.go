package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/rootuip/sre/pkg/config"
	"github.com/rootuip/sre/pkg/escalation"
)

func init() {
	registerCommand(51, func(app *kingpin.Application) map[string]func(*Env) error {
		cmd := app.Command("escalation", "Escalation policies.")
		sim := cmd.Command("simulate", "Dry run: show who would be paged when, and how, for a hypothetical alert (offline, from the config file).")
		file := sim.Flag("config.file", "sred configuration file.").Default("sred.yml").String()
		labels := sim.Flag("label", "Alert label name=value (repeatable), e.g. --label service=api --label severity=critical.").Short('l').StringMap()
		at := sim.Flag("at", "Trigger time (RFC 3339); default now.").String()
		jsonOut := sim.Flag("json", "Print JSON.").Bool()
		return map[string]func(*Env) error{"escalation simulate": func(env *Env) error {
			start := time.Now().UTC()
			if *at != "" {
				t, err := time.Parse(time.RFC3339, *at)
				if err != nil {
					return &ExitError{Code: 2, Err: fmt.Errorf("--at %q: want RFC 3339", *at)}
				}
				start = t
			}
			cfg, err := config.LoadFile(*file)
			if err != nil {
				return &ExitError{Code: 1, Err: err}
			}
			sim, err := escalation.Simulate(&cfg.Escalation, &cfg.OnCall, &cfg.Notifications, *labels, start)
			if err != nil {
				return &ExitError{Code: 1, Err: err}
			}
			if *jsonOut {
				enc := json.NewEncoder(env.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(sim)
			}
			if sim.Policy == "" {
				fmt.Fprintf(env.Stdout, "No escalation policy matches %v: nobody would be paged.\n", *labels)
				return nil
			}
			fmt.Fprintf(env.Stdout, "Policy %q, severity %s, triggered %s\n", sim.Policy, sim.Severity, start.Format(time.RFC3339))
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "AT\tAFTER\tLEVEL\tUSERS\tCHANNELS\tNOTES")
			for _, s := range sim.Steps {
				lvl := fmt.Sprint(s.Level)
				if s.Cycle > 0 {
					lvl = fmt.Sprintf("%d (repeat %d)", s.Level, s.Cycle)
				}
				notes := s.Notes
				if len(s.Skipped) > 0 {
					notes = append(notes, "not configured: "+strings.Join(s.Skipped, ", "))
				}
				fmt.Fprintf(tw, "%s\t+%s\t%s\t%s\t%s\t%s\n", s.At.Format("2006-01-02 15:04 MST"), s.At.Sub(start), lvl,
					orDash(strings.Join(s.Users, ", ")), orDash(strings.Join(s.Channels, ", ")), strings.Join(notes, "; "))
			}
			return tw.Flush()
		}}
	})
}
