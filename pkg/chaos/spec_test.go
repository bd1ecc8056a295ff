package chaos

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rootuip/sre/pkg/store"
	tu "github.com/rootuip/sre/pkg/testutil"
)

func TestLoadExamples(t *testing.T) {
	exps, err := LoadDir(filepath.Join("..", "..", "examples", "chaos"))
	if err != nil {
		t.Fatal(err)
	}
	if len(exps) != 3 {
		t.Fatalf("got %d experiments, want 3", len(exps))
	}
	for _, e := range exps {
		if e.Abort.Interval == 0 || e.Abort.MaxErrorRate != 0.1 || !*e.Abort.BurnRate || !*e.Abort.CriticalIncident {
			t.Errorf("%s: abort defaults not applied: %+v", e.Name, e.Abort)
		}
		for _, f := range e.Faults {
			if f.Driver == "" {
				t.Errorf("%s/%s: no driver", e.Name, f.Name)
			}
		}
	}
	if f := exps[1].Faults[1]; f.Type != FaultCPUStress || f.Driver != DriverStress || f.Workers != 1 {
		t.Errorf("cpu fault defaults: %+v", f)
	}
}

// Each bad fixture fails with an error naming the problem.
func TestBadExperiments(t *testing.T) {
	want := map[string]string{
		"unknown-field.yml":          `testdata/bad/unknown-field.yml:13:1: unknown field "bogus"`,
		"latency-range.yml":          "faults[0]: latency: 10s must be between 100ms and 5s",
		"reset-percent.yml":          "faults[0]: percent: 80 must be between 1 and 50",
		"unknown-type.yml":           `faults[0]: type: "earthquake" is unknown`,
		"no-proxy.yml":               "faults[0]: proxy is required",
		"cpu-percent.yml":            "faults[0]: cpuPercent: 150 must be between 1 and 100",
		"disk-size.yml":              `faults[0]: size: invalid size "10 parsecs"`,
		"chaosmesh-disk.yml":         "faults[0]: driver: Chaos Mesh has no disk-fill fault",
		"http-status.yml":            "faults[0]: status: 200 must be an HTTP error code",
		"http-path-slash.yml":        `faults[0]: paths[0]: "api/pay" must start with '/'`,
		"http-paths-chaosmesh.yml":   "faults[0]: paths: Chaos Mesh's HTTPChaos takes one path, got 2",
		"chaosmesh-port-range.yml":   "faults[0]: kubernetes.port: 70000 must be between 1 and 65535",
		"chaosmesh-port-network.yml": "faults[0]: kubernetes.port: applies to http-delay and http-error faults only (HTTPChaos), not latency",
		"http-percent-chaosmesh.yml": "faults[0]: percent: 80: Chaos Mesh's HTTPChaos has no per-request share, it acts on every request of target.instances pods: use percent 100",
		"no-faults.yml":              "faults: at least one fault is required",
		// A field a merge key brings in is read as one written.
		"duration-zero-merged.yml":   "duration: 0s must be positive (e.g. 5m)",
		"duration-zero.yml":          "duration: 0s must be positive (e.g. 5m)",
		"no-faults-field.yml":        "faults: at least one fault is required",
		"no-faults-null.yml":         "faults: at least one fault is required",
		"bad-promql.yml":             "invalid PromQL",
		"api-version.yml":            `apiVersion must be "chaos.sre.rootuip.io/v1"`,
		"instances.yml":              "target.instances 5 exceeds target.totalInstances 4",
		"rollback-string.yml":        `testdata/bad/rollback-string.yml:14:24: cannot use the string "rm -rf /" here: want a list`,
		"error-rate-percent.yml":     "must be a ratio in (0, 1], e.g. 0.1 for 10%",
		"two-docs.yml":               "one experiment per file",
		"name.yml":                   `name "Bad_Name" must be lowercase`,
		"abort-interval.yml":         "abort.interval: 100y is above 5m",
		"abort-interval-seconds.yml": "abort.interval: 10m is above 5m",
		"error-rate-decimal.yml":     "abort.maxErrorRate: 10 must be a ratio",
		"rollback-timeout.yml":       `rollback[0] (heal): timeout: 100y is above 1h`,
		// The checks of a nested object name its path in the file.
		"hypothesis-missing.yml":        "hypothesis: description is required",
		"hypothesis-no-description.yml": "hypothesis: description is required",
		"hypothesis-no-probes.yml":      "hypothesis: steadyState needs at least one probe",
		"probe-no-name.yml":             "hypothesis.steadyState[1]: name is required",
		"probe-both.yml":                "hypothesis.steadyState[1] (h): set exactly one of promql and http",
		"probe-http-no-url.yml":         `hypothesis.steadyState[0] (h): http.url: "" must be an absolute http(s) URL`,
		"probe-http-status.yml":         "hypothesis.steadyState[0] (h): http.expectStatus: 700 is not an HTTP status",
		"target-missing.yml":            "target: service is required",
		"target-no-service.yml":         "target: service is required",
		"target-no-environment.yml":     "target: environment is required",
		"target-instances-zero.yml":     "target.instances: 0 must be positive",
		"target-no-total.yml":           "target.totalInstances: 0 must be positive",
		"schedule-no-windows.yml":       "schedule: gameDays needs at least one window",
		"schedule-no-length.yml":        "schedule.gameDays[1]: length is required",
		"abort-condition-name.yml":      "abort.promql[1]: name is required",
		"abort-condition-expr.yml":      "abort.promql[0] (errors): expr is required",
		"rollback-no-name.yml":          "rollback[2]: name is required",
		"rollback-no-command.yml":       "rollback[0] (heal): command: [] is empty",
		"rollback-empty-program.yml":    "rollback[0] (heal): command[0]: the program to run is empty",
		"max-budget-share.yml":          "maxBudgetShare: 2 must be a share between 0 and 1",
		"kind-missing.yml":              `kind must be "Experiment", got ""`,
		"measure-latency.yml":           "measure.latencyQuery: invalid PromQL",
		// A fault's check names its index, its name and the field, and
		// is placed at the value (at the fault when the field is missing).
		"latency-millis.yml":          "faults[0] (slow): latency: 10s must be between 100ms and 5s",
		"latency-second-bad.yml":      "faults[1] (b): latency: 10s must be between 100ms and 5s",
		"reset-second-bad.yml":        "faults[1] (r2): percent: 80 must be between 1 and 50",
		"latency-missing.yml":         "faults[0] (slow): latency is required",
		"jitter-range.yml":            "faults[0] (slow): jitter: 1s must be between 0 and the latency, 300ms",
		"timeout-missing.yml":         "faults[0] (stall): timeout is required",
		"bandwidth-negative.yml":      "faults[0] (thin): rateKBps: -5 must be positive",
		"bandwidth-missing.yml":       "faults[0] (thin): rateKBps is required",
		"http-delay-missing.yml":      "faults[0] (slow): delay is required",
		"http-percent.yml":            "faults[0] (err): percent: 150 must be between 1 and 100",
		"http-status-missing.yml":     "faults[0] (err): status is required",
		"process-no-pidfile.yml":      "faults[0] (stop): pidFile is required",
		"cpu-workers.yml":             "faults[0] (cpu): workers: 300 must be between 1 and 256",
		"memory-size-small.yml":       "faults[0] (mem): size: 4095 (4095 bytes) is below the least memory-stress size",
		"disk-no-path.yml":            "faults[0] (disk): path (the directory to fill) is required",
		"type-missing.yml":            "faults[0] (what): type is required",
		"driver-unknown.yml":          `faults[0] (slow): driver: "stress" cannot inject latency faults`,
		"chaosmesh-no-kubernetes.yml": "faults[0] (slow): kubernetes is required by the chaosmesh driver",
		"chaosmesh-no-namespace.yml":  "faults[0] (slow): kubernetes: namespace is required",
		"chaosmesh-no-labels.yml":     "faults[0] (slow): kubernetes: labels are required",
		// A name with ")" or ": " is written escaped in the path.
		"probe-name-paren.yml":    `hypothesis.steadyState[1] ("h:\x20(x\x29"): http.expectStatus: 700`,
		"rollback-name-paren.yml": `rollback[1] ("heal (a\x29b"): timeout: 100y is above 1h`,
		// An item's check is placed at the value it names, written
		// otherwise than the message echoes it or not; a field missing
		// from it at the item.
		"rollback-command-missing.yml":    "rollback[0] (heal): command is required",
		"rollback-timeout-minutes.yml":    "rollback[1] (b): timeout: 4d4h is above 1h",
		"probe-status-hex.yml":            "hypothesis.steadyState[0] (h): http.expectStatus: 700 is not an HTTP status",
		"abort-condition-expr-second.yml": `abort.promql[1] (b): expr: invalid PromQL "up =="`,
		// A syntax error is positioned file:line:col, as in sred.yml.
		"syntax.yml": `testdata/bad/syntax.yml:9:9: invalid YAML: "{" opened here is not closed before line 10`,
	}
	files, _ := filepath.Glob("testdata/bad/*.yml")
	if len(files) != len(want) {
		t.Fatalf("%d fixtures, %d expectations", len(files), len(want))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := LoadFile(f)
			if err == nil {
				t.Fatal("loaded without error")
			}
			if w := want[filepath.Base(f)]; !strings.Contains(err.Error(), w) {
				t.Fatalf("error %q does not contain %q", err, w)
			}
		})
	}
}

func TestSafety(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", "chaos", "api-latency.yml"))
	if err != nil {
		t.Fatal(err)
	}
	load := func(edit func(s string) string) *Experiment {
		e, err := Parse([]byte(edit(string(data))), "x.yml")
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	same := func(s string) string { return s }
	now := time.Date(2026, 12, 10, 15, 0, 0, 0, time.UTC)
	half := 0.5
	tests := []struct {
		name    string
		exp     *Experiment
		budgets []BudgetState
		want    []string
	}{
		{"allowed", load(same), []BudgetState{{SLO: "availability", State: "yellow", Remaining: &half}}, nil},
		{"payment excluded", load(func(s string) string { return strings.Replace(s, "service: api", "service: payment", 1) }), nil,
			[]string{`service "payment" is excluded`}},
		{"production excluded", load(func(s string) string { return strings.Replace(s, "environment: staging", "environment: production", 1) }), nil,
			[]string{`environment "production" is excluded`}},
		{"payment excluded in another case", load(func(s string) string { return strings.Replace(s, "service: api", "service: Payment", 1) }), nil,
			[]string{`service "Payment" is excluded`}},
		{"payment excluded in capitals", load(func(s string) string { return strings.Replace(s, "service: api", "service: PAYMENT", 1) }), nil,
			[]string{`service "PAYMENT" is excluded`}},
		{"production excluded in another case", load(func(s string) string {
			return strings.Replace(s, "environment: staging", "environment: Production", 1)
		}), nil, []string{`environment "Production" is excluded`}},
		{"blast radius", load(func(s string) string { return strings.Replace(s, "instances: 1", "instances: 3", 1) }), nil,
			[]string{"blast radius 3 of 4 instances (75%) exceeds the maximum of 50%"}},
		{"duration", load(func(s string) string { return strings.Replace(s, "duration: 10m", "duration: 2h", 1) }), nil,
			[]string{"duration 2h exceeds the maximum of 1h"}},
		{"red budget", load(same), []BudgetState{{SLO: "availability", State: "red"}, {SLO: "latency", State: "exhausted"}},
			[]string{`SLO "availability" is red`, `SLO "latency" is exhausted`}},
		{"game day", load(func(s string) string {
			return s + "schedule:\n  gameDays:\n    - {start: 2026-12-11T14:00:00Z, length: 2h}\n"
		}), nil, []string{"outside every game-day window"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckSafety(DefaultSafety, tc.exp, tc.budgets, now)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			r, ok := err.(*Refusal)
			if !ok {
				t.Fatalf("got %v, want a refusal", err)
			}
			if len(r.Reasons) != len(tc.want) {
				t.Fatalf("reasons %q, want %d", r.Reasons, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(r.Reasons[i], w) {
					t.Errorf("reason %q does not contain %q", r.Reasons[i], w)
				}
			}
		})
	}
}

func TestLoadExperimentsFromConfig(t *testing.T) {
	root := filepath.Join("..", "..")
	resolve := func(p string) string { return filepath.Join(root, p) }
	exps, err := LoadExperiments(Config{ExperimentFiles: []string{"examples/chaos"}}, resolve)
	if err != nil || len(exps) != 3 {
		t.Fatalf("%d experiments, %v", len(exps), err)
	}
	_, err = LoadExperiments(Config{ExperimentFiles: []string{"examples/chaos", "examples/chaos/api-latency.yml"}}, resolve)
	if err == nil || !strings.Contains(err.Error(), `experiment "api-backend-latency" already defined`) {
		t.Fatalf("duplicate: %v", err)
	}
}

// TestTargetNames: a target's service and environment are plain names; one
// with surrounding whitespace (which dodged the exclusions) or other
// characters is refused at load.
func TestTargetNames(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", "chaos", "api-latency.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		from, to, want string
	}{
		{"service: api", "service: api-v2.eu_1", ""},
		{"service: api", "service: Payment", ""},
		{"service: api", `service: "payment "`, `target.service "payment " is not a plain name`},
		{"service: api", `service: " payment"`, `target.service " payment" is not a plain name`},
		{"service: api", `service: "pay\tment"`, `target.service "pay\tment" is not a plain name`},
		{"service: api", `service: "payment\n"`, `target.service "payment\n" is not a plain name`},
		{"service: api", `service: "a/b"`, `target.service "a/b" is not a plain name`},
		{"service: api", `service: "-api"`, `target.service "-api" is not a plain name`},
		{"service: api", "service: " + strings.Repeat("a", 129), "is not a plain name"},
		{"environment: staging", `environment: "production "`, `target.environment "production " is not a plain name`},
		{"environment: staging", `environment: "Production"`, ""},
	} {
		t.Run(tc.to, func(t *testing.T) {
			text := strings.Replace(string(data), tc.from, tc.to, 1)
			if text == string(data) {
				t.Fatalf("%q not in the example", tc.from)
			}
			_, err := Parse([]byte(text), "x.yml")
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// memExp is an experiment with one memory-stress fault of size and driver.
func memExp(size, driver string) string {
	f := "  - {name: mem, type: memory-stress, size: " + size
	if driver == DriverChaosMesh {
		f += ", driver: chaosmesh, kubernetes: {namespace: checkout, labels: {app: checkout}}"
	}
	return strings.Replace(testExp, "  - {name: a, type: latency, proxy: p, latency: 300ms}\n  - {name: b, type: cpu-stress, cpuPercent: 50}\n", f+"}\n", 1)
}

// TestMemoryStressSize: a memory-stress size is at least stress-ng's least
// --vm-bytes (4KiB) for every driver and at most 1024GiB for Chaos Mesh,
// when the experiment is loaded.
func TestMemoryStressSize(t *testing.T) {
	for _, tc := range []struct{ size, driver, want string }{
		{"4KiB", DriverStress, ""},
		{"4095", DriverStress, "faults[0] (mem): size: 4095 (4095 bytes) is below the least memory-stress size, 4KiB"},
		{"1KiB", DriverChaosMesh, "faults[0] (mem): size: 1KiB (1024 bytes) is below the least memory-stress size, 4KiB"},
		{"256MiB", DriverChaosMesh, ""},
		{"1024GiB", DriverChaosMesh, ""},
		{"1025GiB", DriverChaosMesh, `faults[0] (mem): size: 1025GiB (1100585369600 bytes) is above the largest Chaos Mesh memory-stress size, 1024GiB per pod`},
		{"1048576GiB", DriverChaosMesh, "is above the largest Chaos Mesh memory-stress size"},
	} {
		t.Run(tc.driver+"/"+tc.size, func(t *testing.T) {
			text := memExp(tc.size, tc.driver)
			if !strings.Contains(text, "name: mem") {
				t.Fatal("the fault was not replaced")
			}
			_, err := Parse([]byte(text), "x.yml")
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestMemoryStressAboveHostAtLoad: a memory-stress of the host driver larger
// than this host's memory is an error when sred loads the experiment (and
// srectl check config) and in POST /api/v1/chaos/validate, naming the file,
// the fault, the size and the host's memory; a Chaos Mesh one is not
// compared with this host.
func TestMemoryStressAboveHostAtLoad(t *testing.T) {
	total, err := HostMemory()
	if err != nil {
		t.Fatal(err)
	}
	above := strconv.FormatInt(total/(1<<30)+2, 10) + "GiB"
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	big := write("big.yml", memExp(above, DriverStress))
	small := write("small.yml", strings.Replace(memExp("64MiB", DriverStress), "name: api-latency", "name: small", 1))
	pod := write("pod.yml", strings.Replace(memExp(above, DriverChaosMesh), "name: api-latency", "name: pod", 1))
	id := func(p string) string { return p }
	if exps, err := LoadExperiments(Config{ExperimentFiles: []string{small, pod}}, id); err != nil || len(exps) != 2 {
		t.Fatalf("%d experiments, %v", len(exps), err)
	}
	// At the size, line 11 column 44, as the checks of decoding.
	want := fmt.Sprintf(`:11:44: faults[0] (mem): size: %s (%d bytes) is more than this host's memory (MemTotal %d bytes in /proc/meminfo)`,
		above, (total/(1<<30)+2)<<30, total)
	_, err = LoadExperiments(Config{ExperimentFiles: []string{small, big}}, id)
	if err == nil || err.Error() != "chaos: "+big+want {
		t.Fatalf("load: %v, want %q", err, want)
	}
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		s := New(Options{DB: db, NoAuth: true})
		mux := http.NewServeMux()
		s.Routes(mux)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/chaos/validate", strings.NewReader(memExp(above, DriverStress))))
		var env struct{ Data ValidateResult }
		err := json.Unmarshal(rec.Body.Bytes(), &env)
		res := env.Data
		if err != nil {
			t.Fatalf("%d %s: %v", rec.Code, rec.Body, err)
		}
		if rec.Code != http.StatusOK || res.Valid || res.Error != "request body"+want {
			t.Fatalf("validate: %d %+v, want invalid: request body%s", rec.Code, res, want)
		}
	})
}

// TestCheckHostPlaced: CheckHost, run after decoding, places its error as
// the checks of decoding are, "file:line:col: path: msg" at the size of
// the fault, and names a fault without a name by its index alone, not by
// the default name sred gives it (memory-stress-1); an experiment not
// decoded from a file gets the path alone.
func TestCheckHostPlaced(t *testing.T) {
	total, err := HostMemory()
	if err != nil {
		t.Fatal(err)
	}
	above := strconv.FormatInt(total/(1<<30)+2, 10) + "GiB"
	tail := fmt.Sprintf(`size: %s (%d bytes) is more than this host's memory (MemTotal %d bytes in /proc/meminfo)`,
		above, (total/(1<<30)+2)<<30, total)
	text := strings.Replace(testExp, "  - {name: a, type: latency, proxy: p, latency: 300ms}\n  - {name: b, type: cpu-stress, cpuPercent: 50}\n",
		"  - {name: cpu, type: cpu-stress, cpuPercent: 50}\n  - type: memory-stress\n    size:   "+above+"\n", 1)
	for _, tc := range []struct{ name, text, want string }{
		{"unnamed", text, "exp.yml:13:13: faults[1]: " + tail},
		{"named", strings.Replace(text, "  - type: memory-stress", "  - name: m\n    type: memory-stress", 1), "exp.yml:14:13: faults[1] (m): " + tail},
		{"name with a paren", strings.Replace(text, "  - type: memory-stress", "  - name: 'm (a)b'\n    type: memory-stress", 1), `exp.yml:14:13: faults[1] ("m (a\x29b"): ` + tail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Parse([]byte(tc.text), "exp.yml")
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckHost(e); err == nil || err.Error() != tc.want {
				t.Fatalf("got  %v\nwant %s", err, tc.want)
			}
		})
	}
	e := &Experiment{Faults: []Fault{{Name: "m", Type: FaultMemoryStress, Driver: DriverStress, Size: above}}}
	if err := CheckHost(e); err == nil || err.Error() != "faults[0] (m): "+tail {
		t.Fatalf("not from a file: %v", err)
	}
	e.File = "exp.yml"
	if err := CheckHost(e); err == nil || err.Error() != "exp.yml: faults[0] (m): "+tail {
		t.Fatalf("not decoded: %v", err)
	}
}

// TestRelativePathsFromTheFile: a relative pidFile and disk-fill path mean
// the same wherever sred runs: they are resolved against the directory of
// the experiment file, as Prometheus resolves the paths of its
// configuration; absolute ones are kept.
func TestRelativePathsFromTheFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "chaos")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(testExp, "  - {name: a, type: latency, proxy: p, latency: 300ms}\n  - {name: b, type: cpu-stress, cpuPercent: 50}\n",
		"  - {name: stop, type: process-stop, pidFile: run/api.pid}\n"+
			"  - {name: fill, type: disk-fill, size: 1GiB, path: ../data}\n"+
			"  - {name: abs, type: process-stop, pidFile: /run/other.pid}\n", 1)
	if err := os.WriteFile(filepath.Join(dir, "exp.yml"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	// sred.yml in the parent directory names chaos/ (relative to it); the
	// working directory (this package's) is elsewhere.
	exps, err := LoadExperiments(Config{ExperimentFiles: []string{"chaos"}}, func(p string) string { return filepath.Join(filepath.Dir(dir), p) })
	if err != nil || len(exps) != 1 {
		t.Fatalf("%d experiments, %v", len(exps), err)
	}
	want := map[string]string{"stop": filepath.Join(dir, "run", "api.pid"), "fill": filepath.Join(filepath.Dir(dir), "data"), "abs": "/run/other.pid"}
	for _, f := range exps[0].Faults {
		got := f.PIDFile
		if f.Type == FaultDiskFill {
			got = f.Path
		}
		if got != want[f.Name] {
			t.Errorf("fault %s: %q, want %q", f.Name, got, want[f.Name])
		}
	}
	if keys := resourceLocks(exps[0]); !slices.Contains(keys, "pidfile:"+want["stop"]) {
		t.Errorf("resource locks %v, want pidfile:%s", keys, want["stop"])
	}
}

// A probe query holding a long identifier the parser stops at (the spec is
// a request's body, up to 1 MiB) gets a short error that still names the
// position and the problem.
func TestParseLongPromQLToken(t *testing.T) {
	long := strings.Repeat("x", 100000)
	spec := `apiVersion: chaos.sre.rootuip.io/v1
kind: Experiment
name: t
hypothesis:
  description: d
  steadyState:
    - name: p
      promql: 'up ` + long + `'
target: {service: api, environment: staging, instances: 1, totalInstances: 4}
duration: 5m
faults:
  - {type: cpu-stress, cpuPercent: 50}
`
	_, err := Parse([]byte(spec), "long.yml")
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if len(msg) > 1024 {
		t.Fatalf("error of %d bytes: %.300s", len(msg), msg)
	}
	for _, s := range []string{"invalid PromQL", "1:4: parse error: unexpected identifier", "xxxx…"} {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q does not contain %q", msg, s)
		}
	}
}
