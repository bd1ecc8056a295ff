package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/prometheus/exporter-toolkit/web"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/yamlerr"
)

// splitWebConfig reads the basic_auth_users of the exporter-toolkit web
// configuration file at path and returns them (name -> bcrypt hash), with
// the path of a copy of the file without them, which is what exporter-toolkit
// serves (TLS, HTTP headers, rate limit). sred checks those users itself,
// with every other user, so that routes with their own credential (the
// Alertmanager webhook's bearer token) and public routes (probes) work
// whatever the web configuration says about users.
//
// The copy has absolute certificate paths; certificates are still reloaded
// on every new connection, but edits of the web configuration file itself
// need a restart when it lists users. cleanup removes the copy.
func splitWebConfig(path string) (users map[string]string, served string, cleanup func(), err error) {
	cleanup = func() {}
	if path == "" {
		return nil, "", cleanup, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", cleanup, fmt.Errorf("web config file %s: %w", path, err)
	}
	// A syntax error is named at its line and column, as in sred.yml,
	// before exporter-toolkit's own reading of the file names it raw.
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, "", cleanup, fmt.Errorf("web config file %w", yamlerr.InFile(path, yamlerr.Located(b, err)))
	}
	// exporter-toolkit's errors (yaml.v2's "line N: ...") are positioned
	// at the line and column of the problem, one a line.
	if err := web.Validate(path); err != nil {
		return nil, "", cleanup, fmt.Errorf("web config file %w", yamlerr.FileSection(path, b, "", err))
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, path, cleanup, nil
	}
	// The copy is written as exporter-toolkit reads the file: the fields a
	// merge key (<<: *base) brings in and the values of aliases
	// (tls_server_config: *tls) written out, so that the users and the
	// certificate paths are found wherever they are written, and no alias
	// is left naming an anchor inside the users taken out.
	root, err := yamlerr.Expand(doc.Content[0])
	if err != nil {
		return nil, "", cleanup, fmt.Errorf("web config file %w", yamlerr.FileSection(path, b, "", err))
	}
	found := false
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i], root.Content[i+1]
		switch key.Value {
		case "basic_auth_users":
			if err := val.Decode(&users); err != nil {
				return nil, "", cleanup, fmt.Errorf("web config file %w", yamlerr.FileSection(path, b, "", err))
			}
			root.Content = append(root.Content[:i], root.Content[i+2:]...)
			i -= 2
			found = true
		case "tls_server_config":
			absPaths(val, filepath.Dir(path), "cert_file", "key_file", "client_ca_file")
		}
	}
	if !found {
		return nil, path, cleanup, nil
	}
	out, err := yaml.Marshal(root)
	if err != nil {
		return nil, "", cleanup, err
	}
	f, err := os.CreateTemp("", "sred-web-config-*.yml")
	if err != nil {
		return nil, "", cleanup, fmt.Errorf("write served web config: %w", err)
	}
	_, werr := f.Write(out)
	if err := errors.Join(werr, f.Close()); err != nil {
		os.Remove(f.Name())
		return nil, "", cleanup, fmt.Errorf("write served web config: %w", err)
	}
	return users, f.Name(), func() { os.Remove(f.Name()) }, nil
}

func absPaths(m *yaml.Node, dir string, keys ...string) {
	if m.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		for _, k := range keys {
			v := m.Content[i+1]
			if m.Content[i].Value == k && v.Kind == yaml.ScalarNode && v.Value != "" && !filepath.IsAbs(v.Value) {
				v.Value = filepath.Join(dir, v.Value)
			}
		}
	}
}
