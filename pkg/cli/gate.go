package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/alecthomas/kingpin/v2"

	"github.com/rootuip/sre/pkg/budget"
)

// errDenied is returned when the gate denies: exit code 1.
var errDenied = &ExitError{Code: 1}

func init() {
	registerCommand(61, func(app *kingpin.Application) map[string]func(*Env) error {
		var (
			c                        sredAPI
			service, change, output  string
			token, tokenFile, reason string
			actor                    string
		)
		cmd := app.Command("gate", "Ask the deploy gate whether a change may ship: exit 0 to allow, 1 to deny, 3 when sred fails, 4 when it refuses the request.")
		c.flags(cmd)
		cmd.Flag("service", "Service to deploy.").Required().StringVar(&service)
		cmd.Flag("change", "Kind of change: normal or critical (critical changes ship while the budget is red).").Default(budget.ChangeNormal).EnumVar(&change, budget.ChangeNormal, budget.ChangeCritical)
		cmd.Flag("override-token", "Emergency override token: the change is allowed whatever the budget, and recorded.").Envar("SRECTL_GATE_OVERRIDE_TOKEN").StringVar(&token)
		cmd.Flag("override-token-file", "Read the emergency override token from a file.").StringVar(&tokenFile)
		cmd.Flag("reason", "Why the override is needed (required with an override).").StringVar(&reason)
		cmd.Flag("actor", "Who asks (recorded); defaults to $USER.").Default(defaultActor()).StringVar(&actor)
		cmd.Flag("output", "Output format: text or json.").Short('o').Default("text").EnumVar(&output, "text", "json")
		return map[string]func(*Env) error{
			"gate": func(env *Env) error {
				tok, err := readToken(token, tokenFile)
				if err != nil {
					return err
				}
				if tok != "" && reason == "" {
					return &ExitError{Code: 2, Err: errors.New("--reason is required with an override token")}
				}
				q := url.Values{"service": {service}, "change": {change}}
				if reason != "" {
					q.Set("reason", reason)
				}
				if actor != "" {
					q.Set("actor", actor)
				}
				hdr := http.Header{}
				if tok != "" {
					hdr.Set(budget.OverrideHeader, tok)
				}
				var d budget.Decision
				if err := c.get("/api/v1/gate", q, hdr, &d); err != nil {
					return err
				}
				if output == "json" {
					enc := json.NewEncoder(env.Stdout)
					enc.SetIndent("", "  ")
					if err := enc.Encode(d); err != nil {
						return err
					}
				} else {
					fmt.Fprintf(env.Stdout, "%s: %s\n", d.Answer, d.Reason)
				}
				if !d.Allowed {
					return errDenied
				}
				return nil
			},
		}
	})
}
