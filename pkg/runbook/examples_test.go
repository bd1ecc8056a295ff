package runbook_test

import (
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/rulefmt"

	sredapp "github.com/rootuip/sre/pkg/app"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/runbook"
	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/testutil"
)

// Every example runbook triggers on an alert the shipped rules fire
// (rules/*.yml, generated from examples/slos, examples/*.rules.yml and the
// healing alerts of examples/rules/*.rules.yml), as
// an incident of examples/sred.yml would carry it: the alert's labels, the
// severity its severity label maps to, state triggered.
func TestExampleRunbooksMatchShippedAlerts(t *testing.T) {
	root := testutil.RepoRoot(t)
	cfg, err := sredapp.LoadConfig(filepath.Join(root, "examples", "sred.yml"))
	if err != nil {
		t.Fatal(err)
	}
	set := sredapp.Runbooks.Of(cfg).Set
	var files []string
	for _, g := range []string{"rules/*.yml", "examples/*.rules.yml", "examples/rules/*.rules.yml"} {
		m, err := filepath.Glob(filepath.Join(root, g))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	var incs []*incident.Incident
	for _, f := range files {
		groups, errs := rulefmt.ParseFile(f, false, model.UTF8Validation, slo.Parser, promslog.NewNopLogger())
		if len(errs) > 0 {
			t.Fatalf("%s: %v", f, errs)
		}
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" {
					continue
				}
				labels := map[string]string{"alertname": r.Alert}
				for k, v := range r.Labels {
					labels[k] = v
				}
				sev, ok := cfg.Incidents.SeverityMap[strings.ToLower(labels[cfg.Incidents.SeverityLabel])]
				if !ok {
					sev = cfg.Incidents.DefaultSeverity
				}
				incs = append(incs, &incident.Incident{ID: "INC-1", Severity: sev, Status: incident.StatusTriggered, Labels: labels})
			}
		}
	}
	if len(incs) == 0 {
		t.Fatal("no alerting rules in the shipped rule files")
	}
	for _, rb := range set.List() {
		var matched []string
		for _, inc := range incs {
			if rb.Matches(inc) {
				matched = append(matched, inc.Labels["alertname"]+"{service="+inc.Labels["service"]+",slo="+inc.Labels["slo"]+"}")
			}
		}
		sort.Strings(matched)
		if len(matched) == 0 {
			t.Errorf("runbook %s (matchers %v, severities %v) matches no alert of the shipped rules", rb.Name, rb.Matchers, rb.Severities)
		} else {
			t.Logf("runbook %s: %v", rb.Name, matched)
		}
	}
	if len(set.List()) == 0 {
		t.Fatal("no example runbooks loaded")
	}
}

// No allow-list of an example runbook lets a label value climb out of a
// path (a `..` segment): with disk-cleanup's, an alert with
// mountpoint="/../../etc" ran the cleanup program on /etc. Real values
// still pass.
func TestExampleAllowListsRefuseTraversal(t *testing.T) {
	root := testutil.RepoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "examples", "runbooks", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("example runbooks: %v %v", files, err)
	}
	hostile := []string{"/../etc", "/var/../../etc", "/..", "../etc", "/var/lib/..", "/./..", "..", "/var/./../etc"}
	checked := 0
	for _, f := range files {
		rb, err := runbook.LoadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pats := map[string]string{}
		for l, p := range rb.Labels {
			pats[rb.Name+" label "+l] = p
		}
		for _, s := range rb.Steps {
			for l, p := range s.Labels {
				pats[rb.Name+" step "+s.Name+" label "+l] = p
			}
		}
		for what, p := range pats {
			re := regexp.MustCompile("^(?:" + p + ")$")
			checked++
			for _, v := range hostile {
				if re.MatchString(v) {
					t.Errorf("%s (%s) accepts %q", what, p, v)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no allow-list in the example runbooks")
	}
	rb, err := runbook.LoadFile(filepath.Join(root, "examples", "runbooks", "disk-cleanup.yml"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("^(?:" + rb.Labels["mountpoint"] + ")$")
	for _, v := range []string{"/", "/var", "/var/lib/docker", "/mnt/data_1", "/srv/a..b", "/boot/efi", "/var/lib/kubelet/pods/x-y.z"} {
		if !re.MatchString(v) {
			t.Errorf("disk-cleanup's mountpoint allow-list refuses %q", v)
		}
	}
}
