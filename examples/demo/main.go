// Command demo runs the whole alerting loop of ROOTUIP SRE on one machine,
// on 127.0.0.1: the demo service (examples/demo-service), a Prometheus
// scraping it with the generated rules (rules/) and the Watchdog
// (examples/watchdog.rules.yml), an Alertmanager configured from
// examples/alertmanager.yml with the generated inhibit rules, and sred with
// examples/sred.yml. `make demo` builds what it needs and runs `demo up`;
// `make demo-break` and `make demo-heal` run `demo break` and `demo heal`.
//
// Everything the stack writes (configurations, data, logs) goes under
// --data.dir, emptied at start. Ctrl-C stops every process.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
)

var sigterm = syscall.SIGTERM

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// defaultDataDir is where make demo writes the stack's configurations,
// data and logs: relative to the working directory, the repository's root.
var defaultDataDir = filepath.Join("data", "demo")

func runMain(args []string, stdout, stderr io.Writer) int {
	a := kingpin.New("demo", "Run the demo service, Prometheus, Alertmanager and sred on 127.0.0.1; break and heal the demo.")
	a.HelpFlag.Short('h')
	var o options
	var demoAddrSet bool
	demoAddr := a.Flag("demo.listen-address", "Address of the demo service (break and heal: the one `demo up` recorded in --data.dir).").Default(defaultDemoAddr).IsSetByUser(&demoAddrSet).String()

	up := a.Command("up", "Start the stack and run until Ctrl-C.").Default()
	binDir := up.Flag("bin.dir", "Directory holding sred and demo-service.").Default("bin").String()
	up.Flag("prometheus", "Prometheus binary ($SRE_PROMETHEUS).").Default(envOr("SRE_PROMETHEUS", filepath.Join("bin", "prometheus"))).StringVar(&o.prometheus)
	up.Flag("alertmanager", "Alertmanager binary ($SRE_ALERTMANAGER).").Default(envOr("SRE_ALERTMANAGER", filepath.Join("bin", "alertmanager"))).StringVar(&o.alertmanager)
	up.Flag("examples.dir", "The examples directory (configurations, SLO specs, runbooks, secrets).").Default("examples").StringVar(&o.examples)
	up.Flag("rules.dir", "The generated rule files.").Default("rules").StringVar(&o.rules)
	up.Flag("data.dir", "Where the stack writes configurations, data and logs (emptied at start).").Default(defaultDataDir).StringVar(&o.dataDir)
	up.Flag("prometheus.listen-address", "Address of Prometheus.").Default("127.0.0.1:9090").StringVar(&o.prometheusAddr)
	up.Flag("alertmanager.listen-address", "Address of Alertmanager.").Default("127.0.0.1:9093").StringVar(&o.alertmanagerAddr)
	up.Flag("sred.listen-address", "Address of sred.").Default(defaultSredAddr).StringVar(&o.sredAddr)
	up.Flag("ready-timeout", "How long each program may take to become ready.").Default("60s").DurationVar(&o.readyTimeout)
	logCfg := &promslog.Config{}
	promslogflag.AddFlags(a, logCfg)

	brk := a.Command("break", "Make every request of the demo service fail (POST /admin/errors?rate=1).")
	rate := brk.Flag("rate", "Fraction of requests that fail.").Default("1").Float64()
	brkDataDir := brk.Flag("data.dir", "The data directory of the running demo, where `demo up` recorded its addresses.").Default(defaultDataDir).String()
	heal := a.Command("heal", "Heal the demo service (POST /admin/heal).")
	healDataDir := heal.Flag("data.dir", "The data directory of the running demo, where `demo up` recorded its addresses.").Default(defaultDataDir).String()

	cmd, err := a.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	// break and heal reach the stack at the addresses `demo up` recorded,
	// unless told another demo service address. With none recorded and
	// none told, they stop: the default address may be another program's.
	running := func(cmd, dataDir string) (addresses, bool) {
		ad, err := readAddresses(cmd, dataDir)
		if err != nil && !(errors.Is(err, errNoAddresses) && demoAddrSet) {
			fmt.Fprintf(stderr, "demo: %v\n", err)
			return ad, false
		}
		if demoAddrSet {
			ad.Demo = *demoAddr
		}
		return ad, true
	}
	// postTo posts to the demo service of ad; nothing listening at the
	// address recorded in dataDir means a demo that stopped without
	// removing its addresses (killed), said so.
	postTo := func(cmd, dataDir string, ad addresses, u string) bool {
		err := post(ctx, u)
		if err == nil {
			return true
		}
		if !demoAddrSet {
			err = stoppedDemo(cmd, dataDir, ad, err)
		}
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return false
	}
	switch cmd {
	case brk.FullCommand():
		ad, ok := running("break", *brkDataDir)
		if !ok {
			return 1
		}
		u := "http://" + ad.Demo + "/admin/errors?" + url.Values{"rate": {fmt.Sprint(*rate)}}.Encode()
		if !postTo("break", *brkDataDir, ad, u) {
			return 1
		}
		fmt.Fprintf(stdout, "The demo service now fails %s of its requests. The page fires in about 2 minutes: watch %s.\n", share(*rate), srectlList(ad.Sred))
		return 0
	case heal.FullCommand():
		ad, ok := running("heal", *healDataDir)
		if !ok {
			return 1
		}
		if !postTo("heal", *healDataDir, ad, "http://"+ad.Demo+"/admin/heal") {
			return 1
		}
		fmt.Fprintln(stdout, "The demo service is healed. The incident turns \"recovering\" when the short windows of the page tiers are back under their thresholds (about 35 minutes: the 30m window of api/availability's page_slow tier) and resolves when its alerts resolve (hours: the ticket tiers' windows; docs/demo.md).")
		return 0
	}

	o.demoAddr = *demoAddr
	o.sred = filepath.Join(*binDir, "sred")
	o.demoService = filepath.Join(*binDir, "demo-service")
	o.logger = promslog.New(logCfg)
	s, err := start(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	defer s.stop()
	printBanner(stdout, o)

	exited, _ := s.exited()
	select {
	case <-ctx.Done():
		fmt.Fprintln(stdout, "\nStopping the demo ...")
		return 0
	case p := <-exited:
		fmt.Fprintf(stderr, "demo: %s exited (%v); last lines of %s:\n%s\n", p.name, p.err, p.log, tailFile(p.log, 20))
		return 1
	}
}

// share names a rate of failed requests: "every one" for 1, "12.5%" for
// 0.125.
func share(rate float64) string {
	if rate >= 1 {
		return "every one"
	}
	return strconv.FormatFloat(rate*100, 'g', 4, 64) + "%"
}

// bannerURL is an address the banner prints, with what it shows.
type bannerURL struct{ name, url, note string }

// bannerURLs are the addresses the banner prints. Prometheus' own pages are
// not among them: the pinned Prometheus is built with go install, which
// leaves out its web UI (its pages answer 500 "Error opening React
// index.html"), so the banner names its API.
func bannerURLs(o options) []bannerURL {
	return []bannerURL{
		{"demo service", "http://" + o.demoAddr + "/admin/state", `scraped as job="api": the SLOs of examples/slos/api.yml watch it`},
		{"Prometheus", "http://" + o.prometheusAddr + "/api/v1/alerts", "its API: built with go install, it has no web UI"},
		{"Alertmanager", "http://" + o.alertmanagerAddr + "/#/alerts", ""},
		{"sred", "http://" + o.sredAddr + "/", "incidents, on-call, runbooks, budgets"},
	}
}

// The default addresses of the demo service and sred: those of make
// demo-break, make demo-heal and srectl's default --sred.url.
const (
	defaultDemoAddr = "127.0.0.1:8080"
	defaultSredAddr = "127.0.0.1:8095"
)

// bannerCommands are the commands the banner suggests, each with its
// comment: with other addresses than the defaults, they name them (make
// demo-break and srectl would reach the default ones), and with another
// data directory they name it (break and heal read the addresses `demo up`
// recorded there).
func bannerCommands(o options) [][2]string {
	brk, heal, list := "make demo-break", "make demo-heal", srectlList(o.sredAddr)
	if o.demoAddr != defaultDemoAddr {
		brk = "bin/demo break --demo.listen-address=" + o.demoAddr
		heal = "bin/demo heal --demo.listen-address=" + o.demoAddr
	}
	if o.dataDir != defaultDataDir {
		brk = strings.Replace(brk, "make demo-break", "bin/demo break", 1) + " --data.dir=" + o.dataDir
		heal = strings.Replace(heal, "make demo-heal", "bin/demo heal", 1) + " --data.dir=" + o.dataDir
	}
	return [][2]string{
		{brk, "every request of the demo fails: the page fires in about 2 minutes"},
		{list, "one incident for the outage, severity CRITICAL"},
		{heal, `the incident turns "recovering" in about 35 minutes, resolves hours later`},
	}
}

func printBanner(w io.Writer, o options) {
	fmt.Fprintf(w, "\nThe demo is running (Ctrl-C stops everything):\n\n")
	for _, u := range bannerURLs(o) {
		if u.note != "" {
			u.note = "   (" + u.note + ")"
		}
		fmt.Fprintf(w, "  %-13s %s%s\n", u.name, u.url, u.note)
	}
	fmt.Fprintf(w, "\nConfigurations, data and logs: %s\n\nIn another terminal:\n\n", o.dataDir)
	for _, c := range bannerCommands(o) {
		fmt.Fprintf(w, "  %-31s # %s\n", c[0], c[1])
	}
}
