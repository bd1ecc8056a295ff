// Command srectl is the command-line tool of ROOTUIP SRE.
package main

import (
	"os"

	"github.com/rootuip/sre/pkg/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
