package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// refused is where examples/sred.yml sends every notification: nothing
// listens there, so connections are refused.
const refused = "127.0.0.1:9"

// sinks answer notifications for the "working" set-up: an HTTP server that
// answers 200 to every request and an SMTP server that accepts every
// message (without TLS).
type sinks struct {
	http     *http.Server
	httpAddr string
	smtp     net.Listener
}

func startSinks() (*sinks, error) {
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sinks{httpAddr: hl.Addr().String()}
	s.http = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"success","ok":true}`)
	})}
	go func() { _ = s.http.Serve(hl) }()
	if s.smtp, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		s.http.Close()
		return nil, err
	}
	go func() {
		for {
			c, err := s.smtp.Accept()
			if err != nil {
				return
			}
			go serveSMTP(c)
		}
	}()
	return s, nil
}

func (s *sinks) Close() {
	_ = s.http.Close()
	_ = s.smtp.Close()
}

// serveSMTP accepts every command and message of one connection.
func serveSMTP(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	reply := func(s string) bool { _, err := io.WriteString(c, s+"\r\n"); return err == nil }
	if !reply("220 sink ESMTP") {
		return
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"):
			reply("250-sink\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME")
		case strings.HasPrefix(cmd, "AUTH"):
			reply("235 ok")
		case strings.HasPrefix(cmd, "DATA"):
			reply("354 go on")
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" || l == ".\n" {
					break
				}
			}
			reply("250 queued")
		case strings.HasPrefix(cmd, "QUIT"):
			reply("221 bye")
			return
		default:
			reply("250 ok")
		}
	}
}

var secretFileRE = regexp.MustCompile(`(?m)^(\s*[a-z_]+_file:\s*)(\S+)(.*)$`)

// workingConfig writes a copy of the configuration next to it (so that its
// other relative paths still resolve) whose notification endpoints at
// 127.0.0.1:9, in the file and in the secret files it names, point at the
// sinks, and whose SMTP smarthost does not require TLS. cleanup removes it.
func workingConfig(config, dir string, s *sinks) (string, func(), error) {
	data, err := os.ReadFile(config)
	if err != nil {
		return "", nil, err
	}
	base := filepath.Dir(config)
	text := string(data)
	var errs []error
	text = secretFileRE.ReplaceAllStringFunc(text, func(line string) string {
		m := secretFileRE.FindStringSubmatch(line)
		p := m[2]
		if !filepath.IsAbs(p) {
			p = filepath.Join(base, p)
		}
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), refused) {
			return line
		}
		out := filepath.Join(dir, "working-"+filepath.Base(p))
		if err := os.WriteFile(out, []byte(strings.ReplaceAll(string(b), "http://"+refused+"/", "http://"+s.httpAddr+"/")), 0o600); err != nil {
			errs = append(errs, err)
			return line
		}
		return m[1] + out + m[3]
	})
	if len(errs) > 0 {
		return "", nil, errs[0]
	}
	text = regexp.MustCompile(`(?m)^(\s*)smarthost:\s*`+regexp.QuoteMeta(refused)+`\b.*$`).ReplaceAllString(text,
		"${1}smarthost: "+s.smtp.Addr().String()+"\n${1}require_tls: false")
	text = strings.ReplaceAll(text, "http://"+refused+"/", "http://"+s.httpAddr+"/")
	f, err := os.CreateTemp(base, ".bench-http-working-*.yml")
	if err != nil {
		return "", nil, fmt.Errorf("working channels: %w", err)
	}
	cleanup := func() { os.Remove(f.Name()) }
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		cleanup()
		return "", nil, err
	}
	if err := f.Close(); err != nil {
		cleanup()
		return "", nil, err
	}
	return f.Name(), cleanup, nil
}
