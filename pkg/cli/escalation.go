package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"

	sredapp "github.com/rootuip/sre/pkg/app"
	"github.com/rootuip/sre/pkg/escalation"
	"github.com/rootuip/sre/pkg/oncall"
)

func init() {
	registerCommand(51, func(app *kingpin.Application) map[string]func(*Env) error {
		cmd := app.Command("escalation", "Escalation policies.")
		sim := cmd.Command("simulate", "Dry run: show who would be paged when, and how, for a hypothetical alert: offline from the config file, or from a running sred (--sred.url) with the overrides and maintenance windows stored there.")
		var fileGiven bool
		file := sim.Flag("config.file", "sred configuration file (offline mode).").Default("sred.yml").IsSetByUser(&fileGiven).String()
		var api sredAPI
		sim.Flag("sred.url", "URL of a running sred: simulate there, with stored overrides and maintenance windows.").StringVar(&api.url)
		api.clientFlags(sim)
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
			var sim *escalation.Simulation
			if api.url != "" {
				sim = &escalation.Simulation{}
				body := map[string]any{"labels": *labels, "at": start}
				if err := api.call(http.MethodPost, "/api/v1/escalation/simulate", nil, nil, body, sim); err != nil {
					// A refused simulation names the problem in sred's words
					// (exit 4, as every refusal).
					var ae *apiError
					if errors.As(err, &ae) && ae.ExitCode() == exitRefused {
						return &ExitError{Code: exitRefused, Err: fmt.Errorf("sred: %s", ae.msg)}
					}
					return err
				}
			} else {
				if _, err := os.Stat(*file); !fileGiven && errors.Is(err, fs.ErrNotExist) {
					// The default, sred.yml of the working directory, is
					// seldom there: say which flags name the configuration.
					return &ExitError{Code: 2, Err: fmt.Errorf("no %s in the working directory: name sred's configuration with --config.file (srectl escalation simulate --config.file examples/sred.yml ...), or a running sred with --sred.url", *file)}
				}
				cfg, err := sredapp.LoadConfig(*file)
				if err != nil {
					return &ExitError{Code: 1, Err: err}
				}
				ec := sredapp.Escalation.Of(cfg)
				if sim, err = escalation.Simulate(&ec.Escalation, &ec.OnCall, &ec.Notifications, *labels, start); err != nil {
					// The labels' severity is not one (-l severity=urgent):
					// a flag value srectl refuses, exit 2 (sred answers
					// 400, exit 4).
					return &ExitError{Code: exitUsage, Err: fmt.Errorf("--label: %w", err)}
				}
			}
			if *jsonOut {
				enc := json.NewEncoder(env.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(sim)
			}
			printSimulation(env.Stdout, sim, *labels)
			return nil
		}}
	})
}

func printSimulation(w io.Writer, sim *escalation.Simulation, labels map[string]string) {
	if sim.Policy == "" {
		fmt.Fprintf(w, "No escalation policy matches %v: nobody would be paged.\n", labels)
		return
	}
	start := sim.Start
	fmt.Fprintf(w, "Policy %q, severity %s, triggered %s\n", sim.Policy, sim.Severity, start.Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
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
		// To the second: a window's end stored in milliseconds less a start
		// taken from the clock showed its nanoseconds (+1h9m59.078841286s).
		// The time as srectl oncall prints a shift's, with its UTC offset:
		// "MST" printed a zone without a name, as --at 10:00+01:00 gives,
		// as "+0100".
		fmt.Fprintf(tw, "%s\t+%s\t%s\t%s\t%s\t%s\n", oncall.TimeText(s.At, nil), s.At.Sub(start).Round(time.Second), lvl,
			orDash(strings.Join(s.Users, ", ")), orDash(strings.Join(s.Channels, ", ")), strings.Join(notes, "; "))
	}
	tw.Flush()
	if sim.Offline {
		fmt.Fprintln(w, "Offline: from the config file only; overrides and maintenance windows stored in sred are not included (use --sred.url).")
	}
}
