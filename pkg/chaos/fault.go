package chaos

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/limits"
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
// faults of type t.
func (k *KubeSelector) checkPort(t string) error {
	if t != FaultHTTPDelay && t != FaultHTTPError {
		if k.Port != 0 {
			return fmt.Errorf("kubernetes.port applies to %s and %s faults only (HTTPChaos), not %s", FaultHTTPDelay, FaultHTTPError, t)
		}
		return nil
	}
	if k.Port == 0 {
		k.Port = DefaultHTTPChaosPort
	}
	if k.Port < 1 || k.Port > 65535 {
		return fmt.Errorf("kubernetes.port %d must be between 1 and 65535 (the container port the service listens on)", k.Port)
	}
	return nil
}

// UnmarshalYAML sets the driver and validates the parameters of the type.
func (f *Fault) UnmarshalYAML(unmarshal func(any) error) error {
	type plain Fault
	if err := unmarshal((*plain)(f)); err != nil {
		return err
	}
	return f.validate()
}

func (f *Fault) validate() error {
	d, ok := defaultDriver[f.Type]
	if !ok {
		return fmt.Errorf("fault %s: unknown type %s (known: %s)", limits.Quote(f.Name), limits.Quote(f.Type), strings.Join(FaultTypes(), ", "))
	}
	if f.Driver == "" {
		f.Driver = d
	}
	where := fmt.Sprintf("fault %s (%s)", limits.Quote(f.Name), f.Type)
	if f.Name == "" {
		where = fmt.Sprintf("fault of type %s", f.Type)
	}
	switch f.Driver {
	case d:
	case DriverChaosMesh:
		if f.Type == FaultDiskFill {
			return fmt.Errorf("%s: Chaos Mesh has no disk-fill fault; use the stress driver", where)
		}
		if f.Kubernetes == nil || f.Kubernetes.Namespace == "" || len(f.Kubernetes.Labels) == 0 {
			return fmt.Errorf("%s: the chaosmesh driver needs kubernetes.namespace and kubernetes.labels", where)
		}
		if err := f.Kubernetes.checkPort(f.Type); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	default:
		return fmt.Errorf("%s: driver %s cannot inject this type (use %s or %s)", where, limits.Quote(f.Driver), d, DriverChaosMesh)
	}
	if (f.Driver == DriverToxiproxy || f.Driver == DriverHTTPProxy) && f.Proxy == "" {
		return fmt.Errorf("%s: proxy is required (a proxy name of the chaos configuration)", where)
	}
	pct := func() error {
		if f.Percent < 1 || f.Percent > 100 {
			return fmt.Errorf("%s: percent %v must be between 1 and 100", where, f.Percent)
		}
		for _, p := range f.Paths {
			// Request paths start with '/': a prefix without it matches
			// nothing and the fault would inject nothing.
			if !strings.HasPrefix(p, "/") {
				return fmt.Errorf("%s: paths: %s must start with '/'", where, limits.Quote(p))
			}
		}
		// HTTPChaos has no per-request share: it acts on every request
		// of the pods it selects (target.instances of them). A share of
		// the pods instead would pass the blast radius check and touch
		// percent% of the pods.
		if f.Driver == DriverChaosMesh && f.Percent != 100 {
			return fmt.Errorf("%s: percent %v: Chaos Mesh's HTTPChaos has no per-request share, it acts on every request of target.instances pods: use percent 100 with the chaosmesh driver, or the httpproxy driver for a share", where, f.Percent)
		}
		if f.Driver == DriverChaosMesh && len(f.Paths) > 1 {
			return fmt.Errorf("%s: paths: Chaos Mesh's HTTPChaos takes one path, got %d (one fault per path)", where, len(f.Paths))
		}
		return nil
	}
	switch f.Type {
	case FaultLatency:
		if f.Latency < model.Duration(100*time.Millisecond) || f.Latency > model.Duration(5*time.Second) {
			return fmt.Errorf("%s: latency %v must be between 100ms and 5s", where, f.Latency)
		}
		if f.Jitter < 0 || f.Jitter > f.Latency {
			return fmt.Errorf("%s: jitter %v must be between 0 and the latency", where, f.Jitter)
		}
	case FaultTimeout:
		if f.Timeout <= 0 {
			return fmt.Errorf("%s: timeout must be positive", where)
		}
	case FaultReset:
		if f.Percent < 1 || f.Percent > 50 {
			return fmt.Errorf("%s: percent %v must be between 1 and 50", where, f.Percent)
		}
	case FaultBandwidth:
		if f.RateKBps <= 0 {
			return fmt.Errorf("%s: rateKBps must be positive", where)
		}
	case FaultHTTPDelay:
		if f.Delay <= 0 {
			return fmt.Errorf("%s: delay must be positive", where)
		}
		return pct()
	case FaultHTTPError:
		if f.Status < 400 || f.Status > 599 {
			return fmt.Errorf("%s: status %d must be an HTTP error code (400-599)", where, f.Status)
		}
		return pct()
	case FaultProcessStop:
		if f.Driver == DriverProcess && f.PIDFile == "" {
			return fmt.Errorf("%s: pidFile is required", where)
		}
	case FaultCPUStress:
		if f.CPUPercent < 1 || f.CPUPercent > 100 {
			return fmt.Errorf("%s: cpuPercent %d must be between 1 and 100", where, f.CPUPercent)
		}
		if f.Workers < 0 || f.Workers > 256 {
			return fmt.Errorf("%s: workers %d must be between 1 and 256", where, f.Workers)
		}
		if f.Workers == 0 {
			f.Workers = 1
		}
	case FaultMemoryStress:
		if _, err := MemoryStressBytes(*f); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	case FaultDiskFill:
		if _, err := ParseSize(f.Size); err != nil {
			return fmt.Errorf("%s: size: %w", where, err)
		}
		if f.Type == FaultDiskFill && f.Path == "" {
			return fmt.Errorf("%s: path (the directory to fill) is required", where)
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
		return 0, fmt.Errorf("size %s (%d bytes) is below the least memory-stress size, 4KiB (stress-ng's least --vm-bytes)", limits.Cut(f.Size), n)
	}
	if f.Driver == DriverChaosMesh && n > MaxChaosMeshMemoryStress {
		return 0, fmt.Errorf("size %s (%d bytes) is above the largest Chaos Mesh memory-stress size, 1024GiB per pod", limits.Cut(f.Size), n)
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
func CheckHost(e *Experiment) error {
	var total int64
	for _, f := range e.Faults {
		if f.Type != FaultMemoryStress || f.Driver != DriverStress {
			continue
		}
		n, err := ParseSize(f.Size)
		if err != nil {
			return fmt.Errorf("fault %s (%s): size: %w", limits.Quote(f.Name), f.Type, err)
		}
		if total == 0 {
			if total, err = HostMemory(); err != nil {
				return nil
			}
		}
		if n > total {
			return fmt.Errorf("fault %s (%s): %w", limits.Quote(f.Name), f.Type, MemoryAboveHost(f.Size, n, total))
		}
	}
	return nil
}

// MemoryAboveHost is the error of a memory-stress larger than the host. A
// size that parses may still be long (leading zeros) and the spec is a
// request's body on POST /api/v1/chaos/validate: errors show it by
// limits.Cut.
func MemoryAboveHost(size string, n, total int64) error {
	return fmt.Errorf("memory-stress size %s (%d bytes) is more than this host's memory (MemTotal %d bytes in /proc/meminfo)", limits.Cut(size), n, total)
}
