package runbook

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// FuzzTemplate feeds arbitrary templates and label values to the runbook
// template engine: a template either fails to compile or renders, never
// panics, and a value that its allow-list pattern refuses never reaches
// the output.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"{{ .Labels.service }}", "deployment/{{ .Labels.namespace }}/{{ .Labels.service }}",
		`{{ if eq .Severity "CRITICAL" }}{{ .Labels.service }}{{ end }}`, "{{ printf \"%s-%d\" .Labels.service .RunID }}",
		"{{ range .Labels }}{{ . }}{{ end }}", "{{ index .Labels \"service\" }}", "{{ .Labels.other }}", "{{ urlquery .Labels.service }}",
		"{{ template \"x\" }}", "{{ define \"x\" }}{{ end }}", "{{ $x := 1 }}"} {
		f.Add(s, "api")
		f.Add(s, "$(reboot)")
	}
	allow := allowList{
		"service":   regexp.MustCompile(`^(?:[a-z][a-z0-9-]{0,40})$`),
		"namespace": regexp.MustCompile(`^(?:[a-z][a-z0-9-]{0,40})$`),
	}
	f.Fuzz(func(t *testing.T, src, value string) {
		tm, err := newTmpl("fuzz", src, allow)
		if err != nil {
			return
		}
		out, err := tm.render(TemplateData{Labels: map[string]string{"service": value, "namespace": "prod"}, IncidentID: "INC-1", Severity: "CRITICAL", Runbook: "rb", RunID: 7})
		if err != nil {
			return
		}
		for _, l := range tm.labels {
			if l == "service" && !allow["service"].MatchString(value) {
				t.Fatalf("rendered %q with a refused value %q: %q", src, value, out)
			}
		}
	})
}

// FuzzParse feeds arbitrary runbook files to the loader (templates, the
// shell guard, matchers): it must answer a runbook or an error, never
// panic. Seeds: the example runbooks.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "examples", "runbooks", "*.yml"))
	if len(files) == 0 {
		f.Fatal("no example runbooks")
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rb, err := Parse(data, "fuzz.yml")
		if err != nil {
			return
		}
		if rb.Name == "" || len(rb.matchers) == 0 {
			t.Fatalf("accepted a runbook without a name or matchers: %+v", rb)
		}
	})
}
