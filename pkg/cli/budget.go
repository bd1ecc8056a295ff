package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/rootuip/sre/pkg/budget"
)

func init() {
	registerCommand(60, func(app *kingpin.Application) map[string]func(*Env) error {
		var (
			c       sredAPI
			service string
			output  string
		)
		cmd := app.Command("budget", "Show the error budgets of every SLO (from a running sred).")
		c.flags(cmd)
		cmd.Flag("service", "Only this service.").StringVar(&service)
		cmd.Flag("output", "Output format: table or json.").Short('o').Default("table").EnumVar(&output, "table", "json")
		return map[string]func(*Env) error{
			"budget": func(env *Env) error {
				q := url.Values{}
				if service != "" {
					q.Set("service", service)
				}
				var list budget.SLOList
				if err := c.get("/api/v1/slos", q, nil, &list); err != nil {
					return err
				}
				if output == "json" {
					enc := json.NewEncoder(env.Stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(list)
				}
				return budgetTable(env.Stdout, list.SLOs)
			},
		}
	})
}

func budgetTable(w io.Writer, sts []budget.Status) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tSLO\tGROUP\tOBJECTIVE\tPERIOD\tCOVERED\tSLI\tREMAINING\tREMAINING MIN\tSTATE\tBURN\tEXHAUSTED IN")
	for _, st := range sts {
		burn := "-"
		if st.Forecast.BurnRate != nil {
			burn = budget.BurnFactor(*st.Forecast.BurnRate) + "x/" + st.Forecast.Window
		}
		exh := "-"
		switch {
		case st.Forecast.ExhaustedAt != nil && st.Forecast.SecondsLeft != nil:
			exh = (time.Duration(*st.Forecast.SecondsLeft) * time.Second).Round(time.Minute).String()
		case st.Budget.RemainingRatio != nil && *st.Budget.RemainingRatio <= 0:
			exh = "exhausted"
		}
		// A young SLO's coverage says how long its data is: "0.0%"
		// told nothing of the 12 minutes its figures are over.
		covered := pct(st.Coverage, 1)
		if c := st.CoveredText(); c != "" {
			covered = c
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", st.Service, st.SLO, dashIfEmpty(st.GroupString()),
			pct(&st.Objective, 3), st.Period, covered, pct(st.SLIAchieved, 4), remainingPct(st.Budget.RemainingRatio),
			num(st.Budget.RemainingMinutes), st.State, burn, exh)
	}
	return tw.Flush()
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func pct(v *float64, prec int) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.*f%%", prec, *v*100)
}

// remainingPct is the remaining budget as budget.RemainingPercent says it
// (the coverage has its own column).
func remainingPct(v *float64) string {
	if v == nil {
		return "-"
	}
	return budget.RemainingPercent(v, 1)
}

func num(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f", *v)
}

// readToken reads a token file, or returns the flag value.
func readToken(flag, file string) (string, error) {
	if file == "" {
		return flag, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", &ExitError{Code: 1, Err: fmt.Errorf("read override token: %w", err)}
	}
	return strings.TrimSpace(string(b)), nil
}
