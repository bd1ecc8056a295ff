// Command bench-generate compares `srectl generate` with `sloth generate`
// as a user runs them: whole processes, on the same SLOs. It writes N SLOs
// in Sloth's prometheus/v1 format (two per file) and the same SLOs in the
// native format, then runs, in alternation, sloth on the Sloth files,
// srectl on the Sloth files and srectl on the native files, each under
// /usr/bin/time -v, and prints the median wall and CPU time, peak memory and
// the ratio to Sloth. srectl runs with its cost estimate on (no -q).
//
//	go run ./cmd/bench-generate --sloth=$(TOOLS_CACHE)/sloth-v0.16.0/sloth
//
// `make bench-generate` builds the pinned Sloth and runs it.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/rootuip/sre/pkg/slo/slobench"

	"github.com/rootuip/sre/cmd/internal/benchenv"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

type options struct {
	sloth  string
	srectl string
	before string
	slos   int
	runs   int
	keep   bool
}

func run(args []string) int {
	a := kingpin.New("bench-generate", "Compare srectl generate with sloth generate on the same SLOs, whole process.")
	var o options
	a.Flag("sloth", "sloth binary (v0.16.0).").Required().StringVar(&o.sloth)
	a.Flag("srectl", "srectl binary; built from ./cmd/srectl into a temporary directory when empty.").StringVar(&o.srectl)
	a.Flag("srectl.before", "Another srectl binary (e.g. an older build) to run beside them, on the Sloth files.").StringVar(&o.before)
	a.Flag("slos", "SLOs to generate (two per file, an even number).").Default("1000").IntVar(&o.slos)
	a.Flag("runs", "Runs of each command, in alternation.").Default("5").IntVar(&o.runs)
	a.Flag("keep", "Keep the temporary directory (inputs and outputs).").BoolVar(&o.keep)
	a.HelpFlag.Short('h')
	if _, err := a.Parse(args); err != nil {
		fmt.Fprintf(os.Stderr, "bench-generate: %v\n", err)
		return 2
	}
	if o.slos < 2 || o.slos%2 != 0 || o.runs < 1 {
		fmt.Fprintln(os.Stderr, "bench-generate: --slos must be an even number >= 2 and --runs positive")
		return 2
	}
	if err := bench(o); err != nil {
		fmt.Fprintf(os.Stderr, "bench-generate: %v\n", err)
		return 1
	}
	return 0
}

// measure is what /usr/bin/time -v reports of one process.
type measure struct {
	wall, user, sys time.Duration
	maxRSSKiB       int64
}

func (m measure) cpu() time.Duration { return m.user + m.sys }

type variant struct {
	name string
	argv func(out string) []string
	runs []measure
}

func bench(o options) error {
	dir, done, err := benchenv.Dir("sre-bench-generate-", o.keep)
	if err != nil {
		return err
	}
	defer done()
	srectl, err := benchenv.Binary(o.srectl, dir, "./cmd/srectl")
	if err != nil {
		return err
	}
	slothDir, nativeDir := filepath.Join(dir, "sloth"), filepath.Join(dir, "native")
	if err := slobench.Write(slothDir, nativeDir, o.slos/2); err != nil {
		return err
	}
	variants := []*variant{
		{name: "sloth generate (Sloth files)", argv: func(out string) []string {
			return []string{o.sloth, "generate", "-i", slothDir, "-o", out}
		}},
		{name: "srectl generate (Sloth files)", argv: func(out string) []string {
			return []string{srectl, "generate", "-i", slothDir, "-o", out}
		}},
		{name: "srectl generate (native files)", argv: func(out string) []string {
			return []string{srectl, "generate", "-i", nativeDir, "-o", out}
		}},
	}
	if o.before != "" {
		variants = append(variants, &variant{name: "srectl before (Sloth files)", argv: func(out string) []string {
			return []string{o.before, "generate", "-i", slothDir, "-o", out}
		}})
	}
	fmt.Printf("%d SLOs in %d files; %d runs of each, in alternation\n", o.slos, o.slos/2, o.runs)
	fmt.Printf("load average at start: %s\n", benchenv.LoadAvg())
	for r := 0; r < o.runs; r++ {
		for i, v := range variants {
			// Sloth wants an existing output directory.
			out := filepath.Join(dir, fmt.Sprintf("out-%d-%d", i, r))
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			m, err := timeRun(v.argv(out))
			if err != nil {
				return fmt.Errorf("%s: %w", v.name, err)
			}
			v.runs = append(v.runs, m)
			os.RemoveAll(out)
		}
	}
	fmt.Printf("load average at end:   %s\n\n", benchenv.LoadAvg())
	base := median(variants[0].runs)
	fmt.Printf("%-32s %9s %9s %9s %10s %12s %12s\n", "command (median)", "wall", "user+sys", "max RSS", "runs", "Sloth/this", "Sloth/this")
	fmt.Printf("%-32s %9s %9s %9s %10s %12s %12s\n", "", "", "", "", "", "(wall)", "(CPU)")
	for _, v := range variants {
		m := median(v.runs)
		fmt.Printf("%-32s %9s %9s %6d MiB %10d %11.2fx %11.2fx\n", v.name,
			m.wall.Round(time.Millisecond), m.cpu().Round(time.Millisecond), m.maxRSSKiB/1024, len(v.runs),
			base.wall.Seconds()/m.wall.Seconds(), base.cpu().Seconds()/m.cpu().Seconds())
	}
	return nil
}

// median takes the median of each figure separately.
func median(ms []measure) measure {
	pick := func(f func(measure) int64) int64 {
		v := make([]int64, len(ms))
		for i, m := range ms {
			v[i] = f(m)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return measure{
		wall:      time.Duration(pick(func(m measure) int64 { return int64(m.wall) })),
		user:      time.Duration(pick(func(m measure) int64 { return int64(m.cpu()) })),
		maxRSSKiB: pick(func(m measure) int64 { return m.maxRSSKiB }),
	}
}

// timeRun runs argv under /usr/bin/time -v; the program's own output is
// discarded (srectl's estimate goes to its stderr, which is read but not
// printed).
func timeRun(argv []string) (measure, error) {
	report, err := os.CreateTemp("", "time-")
	if err != nil {
		return measure{}, err
	}
	report.Close()
	defer os.Remove(report.Name())
	cmd := exec.Command("/usr/bin/time", append([]string{"-v", "-o", report.Name()}, argv...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return measure{}, fmt.Errorf("%v: %s", err, lastLines(stderr.String(), 5))
	}
	data, err := os.ReadFile(report.Name())
	if err != nil {
		return measure{}, err
	}
	return parseTime(data)
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// parseTime reads GNU time's -v report.
func parseTime(data []byte) (measure, error) {
	var m measure
	seen := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ": ")
		if !ok {
			continue
		}
		switch k {
		case "User time (seconds)":
			m.user = seconds(v)
			seen++
		case "System time (seconds)":
			m.sys = seconds(v)
			seen++
		case "Elapsed (wall clock) time (h:mm:ss or m:ss)":
			m.wall = clock(v)
			seen++
		case "Maximum resident set size (kbytes)":
			m.maxRSSKiB, _ = strconv.ParseInt(v, 10, 64)
			seen++
		}
	}
	if seen != 4 {
		return m, errors.New("unexpected /usr/bin/time -v report")
	}
	return m, nil
}

func seconds(s string) time.Duration {
	f, _ := strconv.ParseFloat(s, 64)
	return time.Duration(f * float64(time.Second))
}

// clock parses h:mm:ss or m:ss.cc.
func clock(s string) time.Duration {
	var d float64
	for _, p := range strings.Split(s, ":") {
		f, _ := strconv.ParseFloat(p, 64)
		d = d*60 + f
	}
	return time.Duration(d * float64(time.Second))
}
