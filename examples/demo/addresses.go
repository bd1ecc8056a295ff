package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// addressesFile is written by `demo up` into its data directory: the
// addresses the stack listens on, which `demo break` and `demo heal` read
// to reach the demo service and to name sred as started.
const addressesFile = "addresses.json"

// addresses are those of a running stack that break and heal need.
type addresses struct {
	Demo string `json:"demo"`
	Sred string `json:"sred"`
}

// writeAddresses records the addresses of o in its data directory.
func writeAddresses(o options) error {
	b, err := json.Marshal(addresses{Demo: o.demoAddr, Sred: o.sredAddr})
	if err != nil {
		return err
	}
	p := filepath.Join(o.dataDir, addressesFile)
	if err := os.WriteFile(p, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// readAddresses returns the addresses `demo up` recorded in dataDir, or
// the defaults when it recorded none there.
func readAddresses(dataDir string) (addresses, error) {
	a := addresses{Demo: defaultDemoAddr, Sred: defaultSredAddr}
	p := filepath.Join(dataDir, addressesFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return a, nil
	}
	if err != nil {
		return a, fmt.Errorf("read %s: %w", p, err)
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("read %s: %w", p, err)
	}
	return a, nil
}

// srectlList is the srectl command that lists the incidents of the sred
// at addr: srectl's default --sred.url reaches the default address only.
func srectlList(addr string) string {
	if addr == defaultSredAddr {
		return "bin/srectl incidents list"
	}
	return "bin/srectl incidents list --sred.url=http://" + addr
}
