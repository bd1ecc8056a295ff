package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/alecthomas/kingpin/v2"

	sredapp "github.com/rootuip/sre/pkg/app"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/oncall"
)

type oncallOptions struct {
	configFile string
	api        sredAPI
	service    string
	schedule   string
	at         string
	days       int
	jsonOut    bool
}

func init() {
	registerCommand(50, func(app *kingpin.Application) map[string]func(*Env) error {
		var o oncallOptions
		cmd := app.Command("oncall", "Show who is on call now, at a time, or for the next days: from the config file (--config.file) or a running sred (--sred.url, includes stored overrides).")
		cmd.Flag("config.file", "sred configuration file (offline mode).").StringVar(&o.configFile)
		o.api.flags(cmd)
		cmd.Flag("service", "Service name (its primary and backup schedules).").StringVar(&o.service)
		cmd.Flag("schedule", "Schedule name.").StringVar(&o.schedule)
		cmd.Flag("at", "Time (RFC 3339); default now.").StringVar(&o.at)
		cmd.Flag("days", "Also list the shifts of the next N days.").Default("0").IntVar(&o.days)
		cmd.Flag("json", "Print JSON.").BoolVar(&o.jsonOut)
		return map[string]func(*Env) error{"oncall": func(env *Env) error { return runOncall(env, o) }}
	})
}

func runOncall(env *Env, o oncallOptions) error {
	at := time.Now()
	if o.at != "" {
		t, err := time.Parse(time.RFC3339, o.at)
		if err != nil {
			return &ExitError{Code: 2, Err: fmt.Errorf("--at %q: want RFC 3339", o.at)}
		}
		at = t
	}
	if o.days < 0 || o.days > 366 {
		return &ExitError{Code: 2, Err: fmt.Errorf("--days %d: want 0 to 366", o.days)}
	}
	var entries []oncall.OnCallEntry
	if o.configFile != "" {
		cfg, err := sredapp.LoadConfig(o.configFile)
		if err != nil {
			return &ExitError{Code: 1, Err: err}
		}
		oc := &sredapp.Escalation.Of(cfg).OnCall
		dir := oncall.NewDirectory(nil, oc)
		if entries, err = offlineWho(dir, oc, o, at); err != nil {
			// --service or --schedule names what the file does not
			// have: a usage error, as a flag value srectl refuses
			// itself (exit 2; sred answers 404, exit 4).
			return &ExitError{Code: exitUsage, Err: err}
		}
	} else {
		q := url.Values{"at": {at.UTC().Format(time.RFC3339)}, "days": {strconv.Itoa(o.days)}}
		if o.service != "" {
			q.Set("service", o.service)
		}
		if o.schedule != "" {
			q.Set("schedule", o.schedule)
		}
		if err := o.api.get("/api/v1/oncall", q, nil, &entries); err != nil {
			return err
		}
	}
	if o.jsonOut {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(entries)
	}
	return oncall.WriteText(env.Stdout, entries)
}

// offlineWho answers from the configuration only (no stored overrides).
func offlineWho(_ *oncall.Directory, cfg *oncall.Config, o oncallOptions, at time.Time) ([]oncall.OnCallEntry, error) {
	type target struct{ schedule, service, role string }
	var targets []target
	switch {
	case o.service != "":
		svc := cfg.Service(o.service)
		if svc == nil {
			return nil, fmt.Errorf("unknown service %s", limits.Quote(o.service))
		}
		targets = append(targets, target{svc.Primary, svc.Name, "primary"})
		if svc.Backup != "" {
			targets = append(targets, target{svc.Backup, svc.Name, "backup"})
		}
	case o.schedule != "":
		if cfg.Schedule(o.schedule) == nil {
			return nil, fmt.Errorf("unknown schedule %s", limits.Quote(o.schedule))
		}
		targets = append(targets, target{schedule: o.schedule})
	default:
		for _, s := range cfg.Schedules {
			targets = append(targets, target{schedule: s.Name})
		}
	}
	var out []oncall.OnCallEntry
	for _, t := range targets {
		s := cfg.Schedule(t.schedule)
		u, _ := s.At(at, nil)
		e := oncall.OnCallEntry{Schedule: t.schedule, Service: t.service, Role: t.role, At: at.UTC().Format(time.RFC3339), User: u,
			TimeZone: s.Location().String()}
		if o.days > 0 {
			e.Shifts = s.Shifts(at, at.Add(time.Duration(o.days)*24*time.Hour), nil)
		}
		out = append(out, e)
	}
	return out, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
