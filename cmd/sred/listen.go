package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/mdlayher/vsock"
	"github.com/prometheus/exporter-toolkit/web"
	yamlv2 "go.yaml.in/yaml/v2"

	"github.com/rootuip/sre/pkg/connlimit"
)

// fdReserve is the number of file descriptors kept for everything but
// client connections: the store, outgoing HTTP (Alertmanager, Prometheus,
// notifications), runbook processes, log files.
const fdReserve = 256

// connectionCap returns the connection cap to use: max, lowered so that
// the listeners' connections leave fdReserve descriptors of nofile.
func connectionCap(max int, listeners int, nofile uint64, logger *slog.Logger) int {
	if nofile == 0 || listeners < 1 {
		return max
	}
	avail := int64(nofile) - fdReserve
	if per := avail / int64(listeners); per < int64(max) {
		capped := int(max64(per, 1))
		logger.Warn("--web.max-connections lowered to fit the file descriptor limit; raise ulimit -n for more",
			"requested", max, "used", capped, "nofile", nofile, "reserved", fdReserve)
		return capped
	}
	return max
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// listen opens the listeners of flags as exporter-toolkit's
// web.ListenAndServe does: the same addresses, systemd socket activation
// and vsock://. sred opens every listener before it starts any of its
// subsystems, so that an address in use is the one error it reports.
func listen(flags *web.FlagConfig, logger *slog.Logger) ([]net.Listener, error) {
	var listeners []net.Listener
	if flags.WebSystemdSocket != nil && *flags.WebSystemdSocket {
		logger.Info("Listening on systemd activated listeners instead of port listeners.")
		ls, err := activation.Listeners()
		if err != nil {
			return nil, err
		}
		if len(ls) < 1 {
			return nil, errors.New("no socket activation file descriptors found")
		}
		listeners = ls
	} else {
		if flags.WebListenAddresses == nil || len(*flags.WebListenAddresses) == 0 {
			return nil, errors.New("no web listen address or systemd socket flag specified")
		}
		for _, address := range *flags.WebListenAddresses {
			var l net.Listener
			var err error
			if rest, ok := strings.CutPrefix(address, "vsock://"); ok {
				_, p, _ := strings.Cut(rest, ":")
				port, perr := strconv.ParseUint(p, 10, 32)
				if perr != nil {
					return nil, fmt.Errorf("invalid vsock address %q: %w", address, perr)
				}
				l, err = vsock.Listen(uint32(port), nil)
			} else {
				l, err = net.Listen("tcp", address)
			}
			if err != nil {
				for _, o := range listeners {
					o.Close()
				}
				return nil, err
			}
			listeners = append(listeners, l)
		}
	}
	return listeners, nil
}

// serve is exporter-toolkit's web.ServeMultiple on listeners (from
// listen) with each one wrapped by lim, TLS and the web configuration file
// as web.ListenAndServe applies them. It closes the listeners.
func serve(srv *http.Server, listeners []net.Listener, flags *web.FlagConfig, lim *connlimit.Limiter, logger *slog.Logger) error {
	var tlsConfig func() *tls.Config
	if flags.WebConfigFile != nil && *flags.WebConfigFile != "" {
		path := *flags.WebConfigFile
		tlsConfig = func() *tls.Config { return webTLSConfig(path) }
	}
	wrapped := make([]net.Listener, len(listeners))
	for i, l := range listeners {
		defer l.Close()
		wrapped[i] = lim.ListenTLS(l, tlsConfig)
	}
	return web.ServeMultiple(wrapped, srv, flags, logger)
}

// webTLSConfig reads the TLS server configuration of the web configuration
// file at path as exporter-toolkit does for each new connection (the same
// defaults, paths relative to the file), for the connections refused by
// the connection cap: they are answered 503 inside a TLS handshake with
// the server's certificate. It returns nil when the file configures no TLS
// (plain HTTP) or cannot be read (the refusal is then plain text, which a
// TLS client reads as a failed handshake).
func webTLSConfig(path string) *tls.Config {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	c := web.Config{TLSConfig: web.TLSConfig{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13}}
	if err := yamlv2.Unmarshal(b, &c); err != nil {
		return nil
	}
	c.TLSConfig.SetDirectory(filepath.Dir(path))
	cfg, err := web.ConfigToTLSConfig(&c.TLSConfig)
	if err != nil {
		return nil
	}
	return cfg
}

// inUseHint is what follows a listen error of an address in use: what
// probably holds it and the flag that moves this sred; "" for other errors.
func inUseHint(err error, flag string) string {
	if !errors.Is(err, syscall.EADDRINUSE) {
		return ""
	}
	return " (another sred, `make run` or `make demo`? stop it, or move this one with " + flag + ")"
}
