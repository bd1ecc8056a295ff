package main

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/rootuip/sre/pkg/testutil"
)

// TestBannerNamesOtherAddresses: with the default addresses the banner
// suggests make demo-break, srectl's default --sred.url and make
// demo-heal; with others (bin/demo up --sred.listen-address=...) it names
// them, since those commands would reach the default ones. The break
// command it prints goes to the address it names.
func TestBannerNamesOtherAddresses(t *testing.T) {
	var b bytes.Buffer
	printBanner(&b, options{demoAddr: defaultDemoAddr, sredAddr: defaultSredAddr, dataDir: "data/demo"})
	for _, want := range []string{
		"  make demo-break                 # every request of the demo fails",
		"  bin/srectl incidents list       # one incident for the SLO",
		"  make demo-heal                  # the incident turns",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("default banner lacks %q:\n%s", want, b.String())
		}
	}

	demo := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	sred := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	b.Reset()
	printBanner(&b, options{demoAddr: demo, sredAddr: sred, dataDir: "data/demo"})
	for _, want := range []string{
		"  bin/demo break --demo.listen-address=" + demo + " # every request",
		"  bin/srectl incidents list --sred.url=http://" + sred + " # one incident",
		"  bin/demo heal --demo.listen-address=" + demo + " # the incident turns",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("banner for %s and %s lacks %q:\n%s", demo, sred, want, b.String())
		}
	}
	if strings.Contains(b.String(), "make demo-break") {
		t.Errorf("banner for other addresses suggests make demo-break:\n%s", b.String())
	}

	// Nothing listens at demo: the printed command fails naming it.
	brk := strings.Fields(bannerCommands(options{demoAddr: demo, sredAddr: sred})[0][0])
	var stdout, stderr bytes.Buffer
	if code := runMain(brk[1:], &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), demo) {
		t.Errorf("%v: exit %d, stderr %q; want 1 naming %s", brk, code, stderr.String(), demo)
	}
}
