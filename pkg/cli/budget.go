package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/rootuip/sre/pkg/budget"
)

// sredClient talks to the sred API for the budget, gate and sla commands.
type sredClient struct {
	url     string
	timeout time.Duration
}

func (c *sredClient) flags(cmd *kingpin.CmdClause) {
	cmd.Flag("sred.url", "URL of the sred API.").Envar("SRECTL_SRED_URL").Default("http://localhost:8095").StringVar(&c.url)
	cmd.Flag("timeout", "Timeout of the API request.").Default("30s").DurationVar(&c.timeout)
}

// sredError is an error answer of sred: exit code 3 when sred or what it
// depends on (Prometheus) fails, 4 when sred refuses the request.
type sredError struct {
	status int
	msg    string
}

func (e *sredError) Error() string { return fmt.Sprintf("sred answered %d: %s", e.status, e.msg) }

func (e *sredError) ExitCode() int {
	if e.status >= 500 {
		return 3
	}
	return 4
}

// get calls GET path and decodes the envelope's data into out.
func (c *sredClient) get(path string, q url.Values, hdr http.Header, out any) error {
	u, err := url.Parse(strings.TrimSuffix(c.url, "/") + path)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return &ExitError{Code: 2, Err: fmt.Errorf("invalid --sred.url %q", c.url)}
	}
	u.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return &ExitError{Code: 2, Err: err}
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return &ExitError{Code: 3, Err: fmt.Errorf("reach sred: %w", err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return &ExitError{Code: 3, Err: fmt.Errorf("read sred answer: %w", err)}
	}
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return &sredError{status: resp.StatusCode, msg: strings.TrimSpace(string(raw))}
	}
	if resp.StatusCode/100 != 2 || env.Status != "success" {
		return &sredError{status: resp.StatusCode, msg: env.Error}
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return &ExitError{Code: 3, Err: fmt.Errorf("decode sred answer: %w", err)}
	}
	return nil
}

func init() {
	registerCommand(60, func(app *kingpin.Application) map[string]func(*Env) error {
		var (
			c       sredClient
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
	fmt.Fprintln(tw, "SERVICE\tSLO\tGROUP\tOBJECTIVE\tPERIOD\tSLI\tREMAINING\tREMAINING MIN\tSTATE\tBURN\tEXHAUSTED IN")
	for _, st := range sts {
		burn := "-"
		if st.Forecast.BurnRate != nil {
			burn = fmt.Sprintf("%.3gx/%s", *st.Forecast.BurnRate, st.Forecast.Window)
		}
		exh := "-"
		switch {
		case st.Forecast.ExhaustedAt != nil && st.Forecast.SecondsLeft != nil:
			exh = (time.Duration(*st.Forecast.SecondsLeft) * time.Second).Round(time.Minute).String()
		case st.Budget.RemainingRatio != nil && *st.Budget.RemainingRatio <= 0:
			exh = "exhausted"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", st.Service, st.SLO, dashIfEmpty(st.GroupString()),
			pct(&st.Objective, 3), st.Period, pct(st.SLIAchieved, 4), pct(st.Budget.RemainingRatio, 1),
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
		return "", &ExitError{Code: 2, Err: fmt.Errorf("read override token: %w", err)}
	}
	return strings.TrimSpace(string(b)), nil
}
