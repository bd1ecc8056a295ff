package rollout

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// FuzzParse feeds arbitrary text to the definition loader: it answers an
// error or a definition, never panics, and a definition it accepts has a
// plan that ends at weight 100 (canary) or the switch (blue-green), whose
// actions are compiled, and loads again the same from its own YAML (what
// a rollout stores and resumes from). Seeds: the examples; `make fuzz`
// runs it longer.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "examples", "rollouts", "stages", "*.yml"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(canaryDef))
	f.Add([]byte(blueGreenDef))
	f.Add([]byte("name: x\nservice: s\nenvironment: e\ncanary: {stages: [{weight: 100}], set_weight: {exec: {command: [sh, -c, '{{ .Vars.weight }}']}}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse(data, "fuzz.yml")
		if err != nil {
			if strings.Contains(err.Error(), "rollout.plain") {
				t.Fatalf("error names a Go type: %v", err)
			}
			return
		}
		plan := d.Plan()
		if len(plan) == 0 {
			t.Fatal("accepted a definition without stages")
		}
		for _, s := range plan {
			if s.action != nil && s.action.Type() == "" {
				t.Fatalf("stage %s: action not compiled", s.Name)
			}
		}
		if d.Canary != nil && d.Canary.Stages[len(d.Canary.Stages)-1].Weight != 100 {
			t.Fatal("accepted a canary that does not end at 100")
		}
		out, err := yaml.Marshal(d)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		again, err := Parse(out, "again.yml")
		if err != nil {
			t.Fatalf("an accepted definition does not load from its own YAML: %v\n%s", err, out)
		}
		if len(again.Plan()) != len(plan) {
			t.Fatalf("plan changed: %d stages, then %d", len(plan), len(again.Plan()))
		}
	})
}
