package chaos

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/yamlerr"
)

// Fault types.
const (
	FaultLatency      = "latency"       // network delay (+ jitter)
	FaultTimeout      = "timeout"       // connections stall, then close after Timeout
	FaultReset        = "reset"         // a share of connections reset (packet-loss-like)
	FaultBandwidth    = "bandwidth"     // throughput limit
	FaultPartition    = "partition"     // service cut from its dependency
	FaultHTTPDelay    = "http-delay"    // slow endpoints
	FaultHTTPError    = "http-error"    // dependency failures (error codes)
	FaultProcessStop  = "process-stop"  // service failure (stop the process / kill pods)
	FaultCPUStress    = "cpu-stress"    // CPU at a percentage of cores
	FaultMemoryStress = "memory-stress" // memory pressure up to a limit
	FaultDiskFill     = "disk-fill"     // fill a directory up to a limit
)

// Driver names.
const (
	DriverToxiproxy = "toxiproxy"
	DriverHTTPProxy = "httpproxy"
	DriverProcess   = "process"
	DriverStress    = "stress"
	DriverChaosMesh = "chaosmesh"
)

// defaultDriver maps a fault type to its host driver.
var defaultDriver = map[string]string{
	FaultLatency: DriverToxiproxy, FaultTimeout: DriverToxiproxy, FaultReset: DriverToxiproxy,
	FaultBandwidth: DriverToxiproxy, FaultPartition: DriverToxiproxy,
	FaultHTTPDelay: DriverHTTPProxy, FaultHTTPError: DriverHTTPProxy,
	FaultProcessStop: DriverProcess,
	FaultCPUStress:   DriverStress, FaultMemoryStress: DriverStress, FaultDiskFill: DriverStress,
}

// FaultTypes lists the known fault types.
func FaultTypes() []string {
	return []string{FaultLatency, FaultTimeout, FaultReset, FaultBandwidth, FaultPartition,
		FaultHTTPDelay, FaultHTTPError, FaultProcessStop, FaultCPUStress, FaultMemoryStress, FaultDiskFill}
}

// Fault is one injected failure. Which fields apply depends on Type.
type Fault struct {
	Name   string `yaml:"name,omitempty" json:"name"`
	Type   string `yaml:"type" json:"type"`
	Driver string `yaml:"driver,omitempty" json:"driver"`
	// Proxy names a proxy of the chaos configuration (toxiproxy and
	// httpproxy drivers): the service reaches its dependency through it.
	Proxy string `yaml:"proxy,omitempty" json:"proxy,omitempty"`

	Latency model.Duration `yaml:"latency,omitempty" json:"latency,omitempty"`
	Jitter  model.Duration `yaml:"jitter,omitempty" json:"jitter,omitempty"`
	Timeout model.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Percent is the share of connections (reset) or requests (http-*) affected, 1-100.
	Percent float64 `yaml:"percent,omitempty" json:"percent,omitempty"`
	// RateKBps is the bandwidth limit in KB/s.
	RateKBps int64 `yaml:"rateKBps,omitempty" json:"rateKBps,omitempty"`
	// Paths restricts http-* faults to request paths with these prefixes (all when empty).
	Paths  []string       `yaml:"paths,omitempty" json:"paths,omitempty"`
	Status int            `yaml:"status,omitempty" json:"status,omitempty"`
	Delay  model.Duration `yaml:"delay,omitempty" json:"delay,omitempty"`

	// PIDFile holds the pid of the local process to stop (process driver).
	PIDFile string `yaml:"pidFile,omitempty" json:"pidFile,omitempty"`

	// CPUPercent is the load per worker, 1-100; Workers defaults to 1.
	CPUPercent int `yaml:"cpuPercent,omitempty" json:"cpuPercent,omitempty"`
	Workers    int `yaml:"workers,omitempty" json:"workers,omitempty"`
	// Size is the memory or disk limit, e.g. 256MiB.
	Size string `yaml:"size,omitempty" json:"size,omitempty"`
	// Path is the directory to fill (disk-fill).
	Path string `yaml:"path,omitempty" json:"path,omitempty"`

	// Kubernetes selects the pods for the chaosmesh driver.
	Kubernetes *KubeSelector `yaml:"kubernetes,omitempty" json:"kubernetes,omitempty"`

	// node is the fault's node in the experiment file while the
	// experiment is decoded (checkAt places its errors there).
	node *yaml.Node
	// at is where the file writes the fault, kept for the checks made
	// after decoding (CheckHost).
	at faultAt
}

// faultAt is where the file writes a fault: its path in messages, as the
// file names it ("faults[0] (mem)", "faults[1]" without a name: not the
// default name), and the line and column of its size (of the fault when
// it has none); zero for a fault not decoded from a file.
type faultAt struct {
	path      string
	line, col int
}

// KubeSelector selects pods for Chaos Mesh.
type KubeSelector struct {
	Namespace string            `yaml:"namespace" json:"namespace"`
	Labels    map[string]string `yaml:"labels" json:"labels"`
	// ExternalTargets are the dependencies of network faults (host names or IPs).
	ExternalTargets []string `yaml:"externalTargets,omitempty" json:"externalTargets,omitempty"`
	// Port is the container port HTTPChaos intercepts (http-delay and
	// http-error; default 80): requests to another port are untouched.
	Port int `yaml:"port,omitempty" json:"port,omitempty"`
}

// DefaultHTTPChaosPort is the port HTTPChaos intercepts without
// kubernetes.port.
const DefaultHTTPChaosPort = 80

// checkPort validates kubernetes.port and sets its default for the HTTP
// faults of type t; its messages start with the field.
func (k *KubeSelector) checkPort(t string) error {
	if t != FaultHTTPDelay && t != FaultHTTPError {
		if k.Port != 0 {
			return fmt.Errorf("kubernetes.port: applies to %s and %s faults only (HTTPChaos), not %s", FaultHTTPDelay, FaultHTTPError, t)
		}
		return nil
	}
	if k.Port == 0 {
		k.Port = DefaultHTTPChaosPort
	}
	if k.Port < 1 || k.Port > 65535 {
		return fmt.Errorf("kubernetes.port: %d must be between 1 and 65535 (the container port the service listens on)", k.Port)
	}
	return nil
}

// UnmarshalYAML decodes f and keeps its node: the experiment checks the
// fault (see check), knowing its index, and places an error at the node
// of the field it names.
func (f *Fault) UnmarshalYAML(unmarshal func(any) error) error {
	var at itemNode
	if err := unmarshal(&at); err != nil {
		return err
	}
	type plain Fault
	if err := unmarshal((*plain)(f)); err != nil {
		return err
	}
	f.node = at.n
	return nil
}

// itemNode keeps the node of a list item (a fault, a rollback action)
// while the experiment is decoded.
type itemNode struct{ n *yaml.Node }

// UnmarshalYAML implements yaml.Unmarshaler.
func (a *itemNode) UnmarshalYAML(n *yaml.Node) error {
	a.n = n
	return nil
}

// placed is err, the check of the list item at path ("faults[1] (slow)")
// whose node is n, prefixed with that path and placed at the node under n
// of the field it names: the value, n itself when the field is missing.
// Without n (an item not decoded from a file) it is not placed.
func placed(n *yaml.Node, path string, err error) error {
	if err == nil {
		return nil
	}
	full := fmt.Errorf("%s: %w", path, err)
	if n == nil {
		return full
	}
	line, col := namedAt(n, err.Error())
	return &yamlerr.NodeError{Line: line, Column: col, Err: full}
}

// namedAt is the line and column of the node under n that msg names (see
// yamlerr.AtNamed), n's when it names none.
func namedAt(n *yaml.Node, msg string) (line, col int) {
	var ne *yamlerr.NodeError
	if !errors.As(yamlerr.AtNamed(n, "%s", msg), &ne) {
		return n.Line, n.Column
	}
	return ne.Line, ne.Column
}

// checkAt checks f, the fault at index i of the experiment's faults: the
// error starts with its path, "faults[1] (slow): latency: ...", and is
// placed at the node of the field it names (the value; the fault itself
// when the field is missing). It keeps the path and the place of the
// size for CheckHost.
func (f *Fault) checkAt(i int) error {
	path := fmt.Sprintf("faults[%d]%s", i, named(f.Name))
	if err := placed(f.node, path, f.check()); err != nil {
		return err
	}
	f.at = faultAt{path: path}
	if f.node != nil {
		f.at.line, f.at.col = namedAt(f.node, "size: "+f.Size)
	}
	return nil
}

// check sets the driver and the defaults of f and validates the
// parameters of its type; each message starts with the field it names as
// the file writes it ("latency: 10s must be ...", "proxy is required"),
// the caller prefixes the fault's path.
func (f *Fault) check() error {
	if f.Type == "" {
		return fmt.Errorf("type is required (one of: %s)", strings.Join(FaultTypes(), ", "))
	}
	d, ok := defaultDriver[f.Type]
	if !ok {
		return fmt.Errorf("type: %s is unknown (known: %s)", limits.Quote(f.Type), strings.Join(FaultTypes(), ", "))
	}
	if f.Driver == "" {
		f.Driver = d
	}
	switch f.Driver {
	case d:
	case DriverChaosMesh:
		if f.Type == FaultDiskFill {
			return errors.New("driver: Chaos Mesh has no disk-fill fault; use the stress driver")
		}
		switch {
		case f.Kubernetes == nil:
			return errors.New("kubernetes is required by the chaosmesh driver (the namespace and labels of the pods)")
		case f.Kubernetes.Namespace == "":
			return errors.New("kubernetes: namespace is required by the chaosmesh driver")
		case len(f.Kubernetes.Labels) == 0:
			return errors.New("kubernetes: labels are required by the chaosmesh driver (the labels of the pods)")
		}
		if err := f.Kubernetes.checkPort(f.Type); err != nil {
			return err
		}
	default:
		return fmt.Errorf("driver: %s cannot inject %s faults (use %s or %s)", limits.Quote(f.Driver), f.Type, d, DriverChaosMesh)
	}
	if (f.Driver == DriverToxiproxy || f.Driver == DriverHTTPProxy) && f.Proxy == "" {
		return errors.New("proxy is required (a proxy name of the chaos configuration)")
	}
	pct := func() error {
		if f.Percent < 1 || f.Percent > 100 {
			return fmt.Errorf("percent: %v must be between 1 and 100", f.Percent)
		}
		for i, p := range f.Paths {
			// Request paths start with '/': a prefix without it matches
			// nothing and the fault would inject nothing.
			if !strings.HasPrefix(p, "/") {
				return fmt.Errorf("paths[%d]: %s must start with '/'", i, limits.Quote(p))
			}
		}
		// HTTPChaos has no per-request share: it acts on every request
		// of the pods it selects (target.instances of them). A share of
		// the pods instead would pass the blast radius check and touch
		// percent% of the pods.
		if f.Driver == DriverChaosMesh && f.Percent != 100 {
			return fmt.Errorf("percent: %v: Chaos Mesh's HTTPChaos has no per-request share, it acts on every request of target.instances pods: use percent 100 with the chaosmesh driver, or the httpproxy driver for a share", f.Percent)
		}
		if f.Driver == DriverChaosMesh && len(f.Paths) > 1 {
			return fmt.Errorf("paths: Chaos Mesh's HTTPChaos takes one path, got %d (one fault per path)", len(f.Paths))
		}
		return nil
	}
	switch f.Type {
	case FaultLatency:
		if f.Latency == 0 {
			return errors.New("latency is required (between 100ms and 5s)")
		}
		if f.Latency < model.Duration(100*time.Millisecond) || f.Latency > model.Duration(5*time.Second) {
			return fmt.Errorf("latency: %v must be between 100ms and 5s", f.Latency)
		}
		if f.Jitter < 0 || f.Jitter > f.Latency {
			return fmt.Errorf("jitter: %v must be between 0 and the latency, %v", f.Jitter, f.Latency)
		}
	case FaultTimeout:
		if f.Timeout <= 0 {
			return errors.New("timeout is required and must be positive (e.g. 30s)")
		}
	case FaultReset:
		if f.Percent == 0 {
			return errors.New("percent is required (between 1 and 50)")
		}
		if f.Percent < 1 || f.Percent > 50 {
			return fmt.Errorf("percent: %v must be between 1 and 50", f.Percent)
		}
	case FaultBandwidth:
		if f.RateKBps == 0 {
			return errors.New("rateKBps is required (the bandwidth limit in KB/s)")
		}
		if f.RateKBps < 0 {
			return fmt.Errorf("rateKBps: %d must be positive", f.RateKBps)
		}
	case FaultHTTPDelay:
		if f.Delay <= 0 {
			return errors.New("delay is required and must be positive (e.g. 500ms)")
		}
		return pct()
	case FaultHTTPError:
		if f.Status == 0 {
			return errors.New("status is required (an HTTP error code, 400-599)")
		}
		if f.Status < 400 || f.Status > 599 {
			return fmt.Errorf("status: %d must be an HTTP error code (400-599)", f.Status)
		}
		return pct()
	case FaultProcessStop:
		if f.Driver == DriverProcess && f.PIDFile == "" {
			return errors.New("pidFile is required")
		}
	case FaultCPUStress:
		if f.CPUPercent == 0 {
			return errors.New("cpuPercent is required (between 1 and 100)")
		}
		if f.CPUPercent < 1 || f.CPUPercent > 100 {
			return fmt.Errorf("cpuPercent: %d must be between 1 and 100", f.CPUPercent)
		}
		if f.Workers < 0 || f.Workers > 256 {
			return fmt.Errorf("workers: %d must be between 1 and 256", f.Workers)
		}
		if f.Workers == 0 {
			f.Workers = 1
		}
	case FaultMemoryStress:
		if _, err := MemoryStressBytes(*f); err != nil {
			return err
		}
	case FaultDiskFill:
		if _, err := ParseSize(f.Size); err != nil {
			return fmt.Errorf("size: %w", err)
		}
		if f.Path == "" {
			return errors.New("path (the directory to fill) is required")
		}
	}
	return nil
}

// ParseSize reads a byte size such as 512MiB, 1GiB, 100MB or 4096.
func ParseSize(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("a size such as 256MiB is required")
	}
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	num, mult := s, int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("invalid size %s (write e.g. 256MiB)", limits.Quote(s))
	}
	if n > (1<<50)/mult {
		return 0, fmt.Errorf("size %s too large", limits.Quote(s))
	}
	return n * mult, nil
}

// The bounds of a memory-stress size.
const (
	// MinMemoryStress is stress-ng's least --vm-bytes (4 KiB); smaller
	// sizes are refused by stress-ng and stress nothing under Chaos Mesh.
	MinMemoryStress = 4 << 10
	// MaxChaosMeshMemoryStress caps the memory a Chaos Mesh StressChaos may
	// allocate in a pod (its one worker's size): 1 TiB. The host driver is
	// capped by the host's memory instead (MemTotal, see HostMemory); a pod's
	// memory is not known to sred, and a size beyond its limit only gets the
	// stressor OOM-killed in the pod's cgroup.
	MaxChaosMeshMemoryStress = 1 << 40
)

// MemoryStressBytes returns the size of a memory-stress fault in bytes, or
// an error naming the size when it is not one or is out of the bounds of
// its driver: at least MinMemoryStress, at most MaxChaosMeshMemoryStress
// for Chaos Mesh (the host driver checks the host's memory, see CheckHost).
func MemoryStressBytes(f Fault) (int64, error) {
	n, err := ParseSize(f.Size)
	if err != nil {
		return 0, fmt.Errorf("size: %w", err)
	}
	if n < MinMemoryStress {
		return 0, fmt.Errorf("size: %s (%d bytes) is below the least memory-stress size, 4KiB (stress-ng's least --vm-bytes)", limits.Cut(f.Size), n)
	}
	if f.Driver == DriverChaosMesh && n > MaxChaosMeshMemoryStress {
		return 0, fmt.Errorf("size: %s (%d bytes) is above the largest Chaos Mesh memory-stress size, 1024GiB per pod", limits.Cut(f.Size), n)
	}
	return n, nil
}

// HostMemory returns this host's total memory in bytes (MemTotal of
// /proc/meminfo).
func HostMemory() (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("memory-stress: cannot read the host's memory: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("memory-stress: /proc/meminfo: MemTotal %q: %w", strings.TrimSpace(rest), err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("memory-stress: no MemTotal in /proc/meminfo")
}

// CheckHost checks the faults of e that act on this host against it: a
// memory-stress of the host driver larger than this host's memory is an
// error naming the fault, its size and the host's memory. sred checks it
// when it loads an experiment (and srectl check config on the host, and
// POST /api/v1/chaos/validate); the stress driver checks again at
// injection. A host whose memory cannot be read is left to that check.
// The error reads as the checks of decoding do, "file:line:col:
// faults[0] (mem): ..." at the fault's size, the fault named as the file
// names it (by index alone when it has no name); e.File and no position
// for an experiment not decoded from a file, nothing of either without
// e.File.
func CheckHost(e *Experiment) error {
	var total int64
	for i, f := range e.Faults {
		if f.Type != FaultMemoryStress || f.Driver != DriverStress {
			continue
		}
		n, err := ParseSize(f.Size)
		if err != nil {
			return e.faultError(i, fmt.Errorf("size: %w", err))
		}
		if total == 0 {
			if total, err = HostMemory(); err != nil {
				return nil
			}
		}
		if n > total {
			return e.faultError(i, MemoryAboveHost(f.Size, n, total))
		}
	}
	return nil
}

// faultError is err, a check of the fault at index i made after decoding,
// prefixed with the fault's path and placed in e's file at the fault's
// size (see CheckHost).
func (e *Experiment) faultError(i int, err error) error {
	f := &e.Faults[i]
	path := f.at.path
	if path == "" {
		path = fmt.Sprintf("faults[%d]%s", i, named(f.Name))
	}
	err = fmt.Errorf("%s: %w", path, err)
	switch {
	case e.File == "":
		return err
	case f.at.line == 0:
		return fmt.Errorf("%s: %w", e.File, err)
	}
	return fmt.Errorf("%s:%d:%d: %w", e.File, f.at.line, f.at.col, err)
}

// MemoryAboveHost is the error of a memory-stress larger than the host. A
// size that parses may still be long (leading zeros) and the spec is a
// request's body on POST /api/v1/chaos/validate: errors show it by
// limits.Cut.
func MemoryAboveHost(size string, n, total int64) error {
	return fmt.Errorf("size: %s (%d bytes) is more than this host's memory (MemTotal %d bytes in /proc/meminfo)", limits.Cut(size), n, total)
}
