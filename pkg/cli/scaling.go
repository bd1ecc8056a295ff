package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"github.com/rootuip/sre/pkg/scaling"
)

func init() {
	registerCommand(66, func(app *kingpin.Application) map[string]func(*Env) error {
		cmd := app.Command("scaling", "Auto-scaling policies: render them for Kubernetes, check them, replay them against Prometheus history.")

		var (
			genInputs []string
			genOutput string
			genKinds  []string
			promAddr  string
		)
		gen := cmd.Command("generate", "Render each policy with a Kubernetes target as a KEDA ScaledObject and an HPA v2 (files <policy>.keda.yaml and <policy>.hpa.yaml).")
		gen.Flag("policy", "Policy file or directory (repeatable).").Short('i').Required().StringsVar(&genInputs)
		gen.Flag("output", "Directory for the objects, or - for standard output.").Short('o').Default("-").StringVar(&genOutput)
		gen.Flag("kind", "What to render (repeatable): keda, hpa.").Default("keda", "hpa").EnumsVar(&genKinds, "keda", "hpa")
		gen.Flag("keda.prometheus-address", "Prometheus server of the KEDA triggers.").Default("http://prometheus.monitoring.svc:9090").StringVar(&promAddr)

		var checkInputs []string
		check := cmd.Command("check", "Load and check policy files (strict).")
		check.Arg("policy", "Policy files or directories.").Required().StringsVar(&checkInputs)

		var (
			btPolicy, btFrom, btTo, btProm, btFormat string
			btInitial                                int
		)
		bt := cmd.Command("backtest", "Replay a policy against its metric's history in Prometheus: the decisions it would have taken, instances over time, time above threshold, what a longer cooldown saves.")
		bt.Flag("policy", "Policy file.").Required().StringVar(&btPolicy)
		bt.Flag("from", "Start: RFC 3339 or a duration before now in Prometheus' syntax (24h, 2d, 1w, 1d12h).").Default("24h").StringVar(&btFrom)
		bt.Flag("to", "End: RFC 3339, a duration before now (as --from), or now.").Default("now").StringVar(&btTo)
		bt.Flag("prometheus.url", "Prometheus to query.").Default("http://localhost:9090").StringVar(&btProm)
		bt.Flag("initial", "Instances at the start (default: the policy's initial_instances).").IntVar(&btInitial)
		bt.Flag("format", "Output format: text or json.").Default("text").EnumVar(&btFormat, "text", "json")

		return map[string]func(*Env) error{
			"scaling generate": func(env *Env) error {
				return runScalingGenerate(env, genInputs, genOutput, genKinds, scaling.RenderOptions{PrometheusAddress: promAddr})
			},
			"scaling check": func(env *Env) error {
				ps, err := scaling.LoadPaths(checkInputs...)
				if err != nil {
					return &ExitError{Code: 1, Err: err}
				}
				for _, p := range ps {
					fmt.Fprintf(env.Stdout, "%s: policy %s (service %s, %d-%d instances, %s, controller %s)\n", p.File, p.Name, p.Service,
						p.MinInstances, p.MaxInstances, p.Metric.Type, p.Target.Controller)
				}
				return nil
			},
			"scaling backtest": func(env *Env) error {
				p, err := scaling.LoadFile(btPolicy)
				if err != nil {
					return &ExitError{Code: 1, Err: err}
				}
				now := time.Now().UTC()
				from, err := scaling.ParseTime(btFrom, now)
				if err != nil {
					return &ExitError{Code: 2, Err: fmt.Errorf("--from: %w", err)}
				}
				to, err := scaling.ParseTime(btTo, now)
				if err != nil {
					return &ExitError{Code: 2, Err: fmt.Errorf("--to: %w", err)}
				}
				if !to.After(from) {
					return &ExitError{Code: 2, Err: errors.New("--to must be after --from")}
				}
				c, err := api.NewClient(api.Config{Address: btProm})
				if err != nil {
					return &ExitError{Code: 2, Err: fmt.Errorf("--prometheus.url: %w", err)}
				}
				initial := p.InitialInstances
				if btInitial > 0 {
					initial = btInitial
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				r, err := scaling.RunBacktest(ctx, v1.NewAPI(c), p, from, to, initial)
				if err != nil {
					return err
				}
				if btFormat == "json" {
					enc := json.NewEncoder(env.Stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(r)
				}
				return scaling.WriteBacktest(env.Stdout, r)
			},
		}
	})
}

func runScalingGenerate(env *Env, inputs []string, output string, kinds []string, o scaling.RenderOptions) error {
	if output == "" {
		output = "-"
	}
	ps, err := scaling.LoadPaths(inputs...)
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	files := map[string][]byte{}
	var order []string
	for _, p := range ps {
		if p.Target.Kubernetes == nil {
			fmt.Fprintf(env.Stderr, "%s: policy %s has no kubernetes target: sred's controller runs it\n", p.File, p.Name)
			continue
		}
		for _, k := range kinds {
			b, err := scaling.Render(p, k, o)
			if err != nil {
				return err
			}
			name := p.Name + "." + k + ".yaml"
			files[name] = b
			order = append(order, name)
		}
	}
	if output == "-" {
		for i, n := range order {
			if i > 0 {
				io.WriteString(env.Stdout, "---\n")
			}
			env.Stdout.Write(files[n])
		}
		return nil
	}
	if err := os.MkdirAll(output, 0o755); err != nil {
		return fmt.Errorf("write objects: %w", err)
	}
	for _, n := range order {
		if err := os.WriteFile(filepath.Join(output, n), files[n], 0o644); err != nil {
			return fmt.Errorf("write objects: %w", err)
		}
	}
	return nil
}
