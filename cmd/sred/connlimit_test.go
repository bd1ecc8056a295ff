package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMaxConnections runs sred with --web.max-connections=4: four idle
// keep-alive connections are held, the fifth is answered 503 by the
// listener (not an accept error, and the server keeps serving), the held
// ones are still served, and once one closes a new connection is served.
func TestMaxConnections(t *testing.T) {
	const max = 4
	s := start(t, "--config.file=../../examples/sred.yml", "--storage.path="+t.TempDir(), "--web.max-connections=4")
	addr := strings.TrimPrefix(s.url, "http://")
	http.DefaultClient.CloseIdleConnections() // the readiness checks' connection

	get := func(c net.Conn, path string, close bool) (int, string) {
		t.Helper()
		req := "GET " + path + " HTTP/1.1\r\nHost: sred\r\n"
		if close {
			req += "Connection: close\r\n"
		}
		_, err := io.WriteString(c, req+"\r\n")
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	openConns := func() string {
		c := dial()
		defer c.Close()
		_, body := get(c, "/metrics", true)
		for _, l := range strings.Split(body, "\n") {
			if strings.HasPrefix(l, `sre_http_open_connections{listener="web"}`) {
				return l
			}
		}
		return ""
	}
	// Only the scrape's own connection is open once sred saw the others close.
	require.Eventually(t, func() bool { return openConns() == `sre_http_open_connections{listener="web"} 1` }, time.Minute, 20*time.Millisecond)

	// Hold max connections (the scrape's connection above may still be
	// closing on sred's side: a connection refused meanwhile is retried).
	var held []net.Conn
	for range max {
		require.Eventually(t, func() bool {
			c := dial()
			if _, err := io.WriteString(c, "GET /-/healthy HTTP/1.1\r\nHost: sred\r\n\r\n"); err != nil {
				return false
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				return false
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				c.Close()
				return false
			}
			held = append(held, c)
			return true
		}, time.Minute, 20*time.Millisecond)
	}
	over := dial()
	_, err := io.WriteString(over, "POST /api/v1/webhook/alertmanager HTTP/1.1\r\nHost: sred\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
	require.NoError(t, err)
	b, err := io.ReadAll(over)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(b), "HTTP/1.1 503 Service Unavailable\r\n"), "%q", b)
	require.Contains(t, string(b), "too many open connections")

	code, _ := get(held[0], "/-/ready", false)
	require.Equal(t, http.StatusOK, code, "held connections are still served")

	held[1].Close()
	var served bool
	require.Eventually(t, func() bool {
		c := dial()
		defer c.Close()
		r := bufio.NewReader(c)
		if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: sred\r\nConnection: close\r\n\r\n"); err != nil {
			return false
		}
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		served = resp.StatusCode == http.StatusOK && strings.Contains(string(body), `sre_http_refused_connections_total{listener="web"}`)
		return served
	}, time.Minute, 20*time.Millisecond, "a connection is served again once one closed")
	require.Contains(t, s.output(), "Connection limits")
}

// TestMaxConnectionsTLS runs sred behind --web.config.file with TLS and
// --web.max-connections=1: while a client holds the one connection, a new
// TLS client completes its handshake with sred's certificate and reads
// 503 with Retry-After and Connection: close (what Alertmanager retries),
// not a broken handshake.
func TestMaxConnectionsTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	webCfg := filepath.Join(dir, "web.yml")
	require.NoError(t, os.WriteFile(webCfg, []byte(fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\n", certFile, keyFile)), 0o600))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxConnsPerHost: 1}}
	s := startWith(t, &sred{url: "https://", client: client}, "--web.no-auth", "--config.file=../../examples/sred.yml",
		"--storage.path="+filepath.Join(dir, "data"), "--web.config.file="+webCfg, "--web.max-connections=1")

	over := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
	var resp *http.Response
	require.Eventually(t, func() bool {
		// sred may still be closing a connection of the readiness checks.
		code, _ := s.do(t, http.MethodGet, "/-/healthy", nil) // holds the client's one connection
		if code != http.StatusOK {
			return false
		}
		r, err := over.Post(s.url+"/api/v1/webhook/alertmanager", "application/json", strings.NewReader("{}"))
		if err != nil {
			return false
		}
		if r.StatusCode != http.StatusServiceUnavailable {
			r.Body.Close()
			return false
		}
		resp = r
		return true
	}, time.Minute, 20*time.Millisecond)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NotNil(t, resp.TLS, "answered inside TLS")
	require.True(t, resp.Close, "Connection: close")
	require.Equal(t, "1", resp.Header.Get("Retry-After"))
	require.Equal(t, "too many open connections, retry in a moment\n", string(body))
	code, _ := s.do(t, http.MethodGet, "/-/ready", nil)
	require.Equal(t, http.StatusOK, code, "the held connection is still served")
}
