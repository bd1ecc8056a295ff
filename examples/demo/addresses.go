package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// addressesFile is written by `demo up` into its data directory: the
// addresses the stack listens on, which `demo break` and `demo heal` read
// to reach the demo service and to name sred as started. `demo up` removes
// it when it stops its programs (Ctrl-C, SIGTERM, a program exiting, a
// failed start).
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

// errNoAddresses is readAddresses' error when `demo up` recorded no
// addresses in the data directory: it did not start there.
var errNoAddresses = errors.New("no addresses recorded")

// readAddresses returns the addresses `demo up` recorded in dataDir;
// when it recorded none there, the defaults and an error naming the file
// and the flags that point break and heal at the running demo (matched
// by errNoAddresses).
func readAddresses(cmd, dataDir string) (addresses, error) {
	a := addresses{Demo: defaultDemoAddr, Sred: defaultSredAddr}
	p := filepath.Join(dataDir, addressesFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return a, noAddresses(cmd, p)
	}
	if err != nil {
		return a, fmt.Errorf("read %s: %w", p, err)
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("read %s: %w", p, err)
	}
	return a, nil
}

// noAddresses is the error of demo cmd (break, heal) finding no
// addresses at p: it names the file and the flags to use, rather than
// reaching whatever listens on the default address.
func noAddresses(cmd, p string) error {
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	return fmt.Errorf("%w in %s: `demo up` writes it when it starts and removes it when it stops, so no demo is running with this data directory (none was started, or it stopped); "+
		"run `bin/demo %s` in the directory `demo up` ran in (make demo: the repository's root), "+
		"or name the demo's data directory (--data.dir=DIR) or its demo service (--demo.listen-address=HOST:PORT)", errNoAddresses, p, cmd)
}

// removeAddresses removes what writeAddresses recorded in dataDir, if
// anything: the addresses are no longer those of a running demo.
func removeAddresses(dataDir string) error {
	p := filepath.Join(dataDir, addressesFile)
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return nil
}

// stoppedDemo is the error of demo cmd (break, heal) whose POST to the
// demo service recorded in dataDir found nothing listening there: the
// file is from a demo that stopped without removing it (killed, or the
// machine restarted). Other errors of err are returned as they are.
func stoppedDemo(cmd, dataDir string, a addresses, err error) error {
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return err
	}
	p := filepath.Join(dataDir, addressesFile)
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	return fmt.Errorf("demo is not running (%s is from a stopped demo: nothing listens at %s, the demo service address recorded in %s); "+
		"start it with `make demo` (or `bin/demo up`), or point `bin/demo %s` at a running demo: its data directory (--data.dir=DIR) "+
		"or its demo service (--demo.listen-address=HOST:PORT)", addressesFile, a.Demo, p, cmd)
}

// srectlList is the srectl command that lists the incidents of the sred
// at addr: srectl's default --sred.url reaches the default address only.
func srectlList(addr string) string {
	if addr == defaultSredAddr {
		return "bin/srectl incidents list"
	}
	return "bin/srectl incidents list --sred.url=http://" + addr
}
