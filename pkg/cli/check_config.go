package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/alecthomas/kingpin/v2"

	sredapp "github.com/rootuip/sre/pkg/app"
	"github.com/rootuip/sre/pkg/change"
	"github.com/rootuip/sre/pkg/yamlerr"
)

func init() {
	registerCommand(50, func(app *kingpin.Application) map[string]func(*Env) error {
		check := app.Command("check", "Check configuration files offline.")
		cmd := check.Command("config", "Validate sred configuration files (sred.yml) as sred would load them.")
		files := cmd.Arg("file", "Configuration file(s) to check.").Required().Strings()
		webConfig := cmd.Flag("web.config.file", "sred's --web.config.file, checked with the configuration: combinations of users and webhook credentials that cannot work are reported.").
			PlaceHolder("<filename>").String()
		return map[string]func(*Env) error{"check config": func(env *Env) error { return checkConfig(env, *files, *webConfig) }}
	})
}

func checkConfig(env *Env, files []string, webConfig string) error {
	failed := 0
	for _, f := range files {
		fmt.Fprintf(env.Stdout, "Checking '%s'\n", f)
		// The same subsystems, loading and checking their sections, as sred.
		cfg, err := sredapp.LoadConfig(f)
		if err != nil {
			fmt.Fprintf(env.Stdout, "  FAILED: %s\n\n", yamlerr.Message(err.Error()))
			failed++
			continue
		}
		warnings, err := checkAccess(cfg, webConfig)
		if err != nil {
			fmt.Fprintf(env.Stdout, "  FAILED: %s\n\n", err)
			failed++
			continue
		}
		fmt.Fprintf(env.Stdout, "  SUCCESS\n")
		// The sections' warnings at the node of the file they name, as
		// sred logs them; those of access (users file, web config file)
		// as they are.
		for _, w := range cfg.Warnings() {
			fmt.Fprintf(env.Stdout, "  WARNING: %s\n", cfg.PlaceWarning(w))
		}
		for _, w := range warnings {
			fmt.Fprintf(env.Stdout, "  WARNING: %s\n", w)
		}
		summarizeConfig(env, cfg)
		fmt.Fprintln(env.Stdout)
	}
	if failed > 0 {
		return &ExitError{Code: 1, Err: errors.New("configuration check failed")}
	}
	return nil
}

func summarizeConfig(env *Env, cfg *sredapp.Config) {
	auth := "none"
	if cfg.Webhook.BearerToken != "" || cfg.Webhook.BearerTokenFile != "" {
		auth = "bearer token"
	}
	fmt.Fprintf(env.Stdout, "  incident IDs: %s-YYYY-NNNN, webhook auth: %s, max body: %d bytes\n",
		cfg.Global.IncidentIDPrefix, auth, cfg.Webhook.MaxBodyBytes)
	fmt.Fprintf(env.Stdout, "  service labels: %v, severity label: %s (default %s), auto resolve: %t, flap window: %s\n",
		cfg.Incidents.ServiceLabels, cfg.Incidents.SeverityLabel, cfg.Incidents.DefaultSeverity,
		cfg.Incidents.AutoResolve, cfg.Incidents.FlapWindow)
	if g := sredapp.ServiceGraph(cfg); g != nil && len(g.Services) > 0 {
		deps := 0
		for _, svc := range g.Services {
			deps += len(svc.DependsOn)
		}
		fmt.Fprintf(env.Stdout, "  service graph: %s, %s (correlation: docs/correlation.md)\n",
			count(len(g.Services), "service", "services"), count(deps, "dependency", "dependencies"))
	}
	if cfg.Incidents.AutoResolveAfter > 0 {
		fmt.Fprintf(env.Stdout, "  auto resolve after %s without a delivery\n", cfg.Incidents.AutoResolveAfter)
	}
	if cfg.Alertmanager.URL != "" {
		fmt.Fprintf(env.Stdout, "  alertmanager: %s\n", cfg.Alertmanager.URL)
	}
	if w := cfg.Alertmanager.Watchdog; w.Alertname != "" {
		fmt.Fprintf(env.Stdout, "  watchdog: alert %s, timeout %s\n", w.Alertname, w.Timeout)
	} else {
		fmt.Fprintf(env.Stdout, "  watchdog: off\n")
	}
	if cfg.Prometheus.URL != "" {
		fmt.Fprintf(env.Stdout, "  prometheus: %s\n", cfg.Prometheus.URL)
	}
	if ac := sredapp.Analysis.Of(cfg); ac != nil && len(ac.Specs) > 0 {
		names := make([]string, len(ac.Specs))
		for i, s := range ac.Specs {
			names[i] = fmt.Sprintf("%s (%s)", s.Name, count(len(s.AllChecks()), "check", "checks"))
		}
		fmt.Fprintf(env.Stdout, "  rollout analyses: %s (docs/rollouts.md)\n", strings.Join(names, ", "))
	}
	if cc := sredapp.Changes.Of(cfg); cc != change.DefaultConfig {
		summarizeChanges(env, cc)
	}
	if rc := sredapp.Rollouts.Of(cfg); rc != nil && len(rc.Definitions) > 0 {
		names := make([]string, len(rc.Definitions))
		for i, d := range rc.Definitions {
			names[i] = fmt.Sprintf("%s (%s of %s, %s)", d.Name, d.Strategy(), d.Service, count(len(d.Plan()), "stage", "stages"))
		}
		fmt.Fprintf(env.Stdout, "  rollouts: %s (docs/rollout-runner.md)\n", strings.Join(names, ", "))
	}
	if sc := sredapp.Scaling.Of(cfg); sc != nil && len(sc.Policies) > 0 {
		names := make([]string, len(sc.Policies))
		for i, p := range sc.Policies {
			names[i] = fmt.Sprintf("%s (%s %d-%d, scaled by %s", p.Name, p.Metric.Type, p.MinInstances, p.MaxInstances, p.Target.Controller)
			if p.DryRun || sc.Config.DryRun {
				names[i] += ", dry run"
			}
			names[i] += ")"
		}
		fmt.Fprintf(env.Stdout, "  scaling policies: %s (docs/scaling.md)\n", strings.Join(names, ", "))
	}
}

func summarizeChanges(env *Env, cc change.Config) {
	quota := "none"
	if cc.YellowMaxChangesPerDay > 0 {
		quota = fmt.Sprintf("%d a day", cc.YellowMaxChangesPerDay)
	}
	fmt.Fprintf(env.Stdout, "  changes: incidents linked within %s, yellow quota %s, DORA window %s (docs/changes.md)\n",
		cc.IncidentLinkWindow, quota, cc.DORAWindow)
}
