package dashboards

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/testutil"
)

// The example Prometheus configuration passes the pinned promtool, run from
// the repository root as examples/grafana/README.md does, and the pinned
// Prometheus starts with it there, loading every generated rule file and the
// Watchdog and scraping sred on localhost:8095.
func TestExamplePrometheusConfig(t *testing.T) {
	root := testutil.RepoRoot(t)
	rules, err := filepath.Glob(filepath.Join(root, "rules", "*.yml"))
	if err != nil || len(rules) == 0 {
		t.Fatalf("no generated rules in rules/ (%v)", err)
	}

	cmd := exec.Command(testutil.Tool(t, "promtool"), "check", "config", "examples/prometheus.yml")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config examples/prometheus.yml: %v\n%s", err, out)
	}
	for _, r := range rules {
		if want := "Checking rules/" + filepath.Base(r); !bytes.Contains(out, []byte(want)) {
			t.Errorf("promtool did not check %s (the ../rules/*.yml path):\n%s", filepath.Base(r), out)
		}
	}

	port := testutil.FreePort(t)
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	testutil.StartProcess(t, "prometheus", testutil.Tool(t, "prometheus"), []string{
		"--config.file=examples/prometheus.yml",
		"--storage.tsdb.path=" + t.TempDir(),
		"--enable-feature=created-timestamp-zero-ingestion",
		"--web.listen-address=127.0.0.1:" + strconv.Itoa(port),
		"--log.level=warn",
	}, root, url, "/-/ready")

	var ruleResp struct {
		Data struct {
			Groups []struct {
				File string `json:"file"`
			} `json:"groups"`
		} `json:"data"`
	}
	getJSON(t, url+"/api/v1/rules", &ruleResp)
	loaded := map[string]bool{}
	for _, g := range ruleResp.Data.Groups {
		loaded[filepath.Base(g.File)] = true
	}
	want := []string{"watchdog.rules.yml"}
	for _, r := range rules {
		want = append(want, filepath.Base(r))
	}
	for _, w := range want {
		if !loaded[w] {
			t.Errorf("Prometheus did not load %s; loaded %v", w, loaded)
		}
	}

	// Targets appear once service discovery has run.
	var sred []string
	for deadline := time.Now().Add(20 * time.Second); len(sred) == 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var targets struct {
			Data struct {
				ActiveTargets []struct {
					ScrapePool string            `json:"scrapePool"`
					Labels     map[string]string `json:"labels"`
				} `json:"activeTargets"`
			} `json:"data"`
		}
		getJSON(t, url+"/api/v1/targets", &targets)
		for _, tg := range targets.Data.ActiveTargets {
			if tg.ScrapePool == "sred" {
				sred = append(sred, tg.Labels["instance"])
			}
		}
	}
	if len(sred) != 1 || sred[0] != "localhost:8095" {
		t.Errorf("sred targets = %v, want [localhost:8095]", sred)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// The subset of Grafana's provisioning schema the examples use; decoding is
// strict, so a misspelt key fails.
type datasourcesFile struct {
	APIVersion  int `yaml:"apiVersion"`
	Datasources []struct {
		Name      string         `yaml:"name"`
		UID       string         `yaml:"uid"`
		Type      string         `yaml:"type"`
		Access    string         `yaml:"access"`
		URL       string         `yaml:"url"`
		IsDefault bool           `yaml:"isDefault"`
		JSONData  map[string]any `yaml:"jsonData"`
	} `yaml:"datasources"`
}

type dashboardProvidersFile struct {
	APIVersion int `yaml:"apiVersion"`
	Providers  []struct {
		Name                  string `yaml:"name"`
		Folder                string `yaml:"folder"`
		Type                  string `yaml:"type"`
		DisableDeletion       bool   `yaml:"disableDeletion"`
		AllowUIUpdates        bool   `yaml:"allowUiUpdates"`
		UpdateIntervalSeconds int    `yaml:"updateIntervalSeconds"`
		Options               struct {
			Path                      string `yaml:"path"`
			FoldersFromFilesStructure bool   `yaml:"foldersFromFilesStructure"`
		} `yaml:"options"`
	} `yaml:"providers"`
}

func decodeStrict(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// The Grafana provisioning files parse strictly, point at the Prometheus of
// examples/prometheus.yml, and load every generated dashboard from the
// directory the README sets in ROOTUIP_SRE_DASHBOARDS.
func TestExampleGrafanaProvisioning(t *testing.T) {
	root := testutil.RepoRoot(t)
	prov := filepath.Join(root, "examples", "grafana", "provisioning")

	var ds datasourcesFile
	decodeStrict(t, filepath.Join(prov, "datasources", "prometheus.yml"), &ds)
	if ds.APIVersion != 1 || len(ds.Datasources) != 1 {
		t.Fatalf("datasources: apiVersion %d, %d data sources; want 1 and 1", ds.APIVersion, len(ds.Datasources))
	}
	d := ds.Datasources[0]
	if d.Type != "prometheus" || d.URL != "http://localhost:9090" || !d.IsDefault || d.Access != "proxy" {
		t.Errorf("data source %+v: want the default prometheus data source at http://localhost:9090 (access proxy)", d)
	}

	var dp dashboardProvidersFile
	decodeStrict(t, filepath.Join(prov, "dashboards", "rootuip-sre.yml"), &dp)
	if dp.APIVersion != 1 || len(dp.Providers) != 1 || dp.Providers[0].Type != "file" {
		t.Fatalf("dashboard providers: %+v, want one file provider", dp)
	}
	readme, err := os.ReadFile(filepath.Join(root, "examples", "grafana", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, []byte(`ROOTUIP_SRE_DASHBOARDS="$PWD/dashboards"`)) {
		t.Errorf("README does not set ROOTUIP_SRE_DASHBOARDS to the dashboards directory")
	}
	// Grafana expands environment variables in provisioning files.
	dir := os.Expand(dp.Providers[0].Options.Path, func(name string) string {
		if name == "ROOTUIP_SRE_DASHBOARDS" {
			return filepath.Join(root, "dashboards")
		}
		t.Errorf("provisioning uses $%s, which the README does not set", name)
		return ""
	})
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, f := range files {
		got = append(got, filepath.Base(f))
	}
	ds2, err := All()
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range ds2 {
		want = append(want, x.File)
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("provisioned dashboards %v, want %v", got, want)
	}

	// Every file the README's commands name exists.
	for _, p := range []string{"examples/prometheus.yml", "examples/sred.yml", "examples/grafana/provisioning", "dashboards"} {
		if !bytes.Contains(readme, []byte(p)) {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("README names %s: %v", p, err)
		}
	}
}
