// Package specfiles reads the YAML files of specs kept in git (chaos
// experiments, rollout analyses and definitions, scaling policies): a
// file, or every *.yml and *.yaml file of a directory, in name order, with
// names unique across them.
package specfiles

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/rootuip/sre/pkg/yamlerr"
)

// Files returns path when it is a file, or the *.yml and *.yaml files of
// the directory path, sorted.
func Files(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	var files []string
	for _, pat := range []string{"*.yml", "*.yaml"} {
		m, err := filepath.Glob(filepath.Join(path, pat))
		if err != nil {
			return nil, err
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	return files, nil
}

// Load reads the files of each path (Files) with load. A name (name) used
// twice is an error naming both files: "FILE:LINE:COL: KIND "NAME" already
// defined in OTHER", at the name in the second file (no position when the
// file does not write the name).
func Load[T any](kind string, load func(file string) (T, error), name func(T) string, paths ...string) ([]T, error) {
	var out []T
	seen := map[string]string{}
	for _, path := range paths {
		files, err := Files(path)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			v, err := load(f)
			if err != nil {
				return nil, err
			}
			n := name(v)
			if prev, ok := seen[n]; ok {
				data, _ := os.ReadFile(f)
				return nil, yamlerr.FileChecks(f, data, nil, fmt.Errorf("%s %q already defined in %s", kind, n, prev))
			}
			seen[n] = f
			out = append(out, v)
		}
	}
	return out, nil
}
