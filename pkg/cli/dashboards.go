package cli

import (
	"fmt"

	"github.com/alecthomas/kingpin/v2"

	"github.com/rootuip/sre/pkg/dashboards"
)

func init() {
	registerCommand(80, func(app *kingpin.Application) map[string]func(*Env) error {
		cmd := app.Command("dashboards", "Generate the Grafana dashboards (JSON) into a directory.")
		out := cmd.Flag("output", "Directory to write the dashboards to.").Short('o').Default("dashboards").String()
		return map[string]func(*Env) error{
			"dashboards": func(env *Env) error {
				paths, err := dashboards.Write(*out)
				if err != nil {
					return fmt.Errorf("generate dashboards: %w", err)
				}
				for _, p := range paths {
					fmt.Fprintln(env.Stdout, p)
				}
				return nil
			},
		}
	})
}
