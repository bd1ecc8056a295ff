package main

import (
	"bufio"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSinkHTTP: the HTTP sink answers 200 with a JSON body to whatever
// the channels send.
func TestSinkHTTP(t *testing.T) {
	s, err := startSinks()
	require.NoError(t, err)
	defer s.Close()
	for _, path := range []string{"/sred", "/v2/enqueue", "/Messages.json", "/example-slack-webhook/REPLACE-ME"} {
		resp, err := http.Post("http://"+s.httpAddr+path, "application/json", strings.NewReader(`{"text":"INC-1 firing"}`))
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		require.JSONEq(t, `{"status":"success","ok":true}`, string(body))
	}
}

// TestSinkSMTP: Go's SMTP client (as sred's email channel uses it, with
// PLAIN authentication and no TLS) delivers a message to the SMTP sink.
func TestSinkSMTP(t *testing.T) {
	s, err := startSinks()
	require.NoError(t, err)
	defer s.Close()
	c, err := smtp.Dial(s.smtp.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Hello("sred.example.com"))
	ok, params := c.Extension("AUTH")
	require.True(t, ok)
	require.Contains(t, params, "PLAIN")
	require.NoError(t, c.Auth(smtp.PlainAuth("", "sred", "secret", "127.0.0.1")))
	require.NoError(t, c.Mail("sred@example.com"))
	require.NoError(t, c.Rcpt("oncall@example.com"))
	w, err := c.Data()
	require.NoError(t, err)
	// A line of a single dot in the body is sent dot-stuffed and does not
	// end the message.
	_, err = io.WriteString(w, "Subject: INC-1\r\n\r\nfiring\r\n.\r\n..\r\nend\r\n")
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.NoError(t, c.Quit())
}

// TestServeSMTP: the SMTP sink's replies to one conversation, line by line.
func TestServeSMTP(t *testing.T) {
	steps := []struct{ send, want string }{
		{"", "220 sink ESMTP\r\n"},
		{"EHLO sred\r\n", "250-sink\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"},
		{"helo sred\r\n", "250 ok\r\n"},
		{"AUTH PLAIN AHNyZWQAc2VjcmV0\r\n", "235 ok\r\n"},
		{"MAIL FROM:<sred@example.com>\r\n", "250 ok\r\n"},
		{"RCPT TO:<oncall@example.com>\r\n", "250 ok\r\n"},
		{"DATA\r\n", "354 go on\r\n"},
		// The body: no reply until the line of a single dot (here with a
		// bare LF).
		{"Subject: INC-1\r\n\r\n..\r\n. not the end\r\n.\n", "250 queued\r\n"},
		{"RSET\r\n", "250 ok\r\n"},
		{"quit\r\n", "221 bye\r\n"},
	}
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() { serveSMTP(server); close(done) }()
	r := bufio.NewReader(client)
	for _, s := range steps {
		if s.send != "" {
			_, err := io.WriteString(client, s.send)
			require.NoError(t, err)
		}
		got := make([]byte, len(s.want))
		_, err := io.ReadFull(r, got)
		require.NoError(t, err, "after %q", s.send)
		require.Equal(t, s.want, string(got), "after %q", s.send)
	}
	_, err := r.ReadByte()
	require.ErrorIs(t, err, io.EOF, "QUIT closes the connection")
	<-done
}

// fakeSinks are sinks at fixed addresses, for golden files.
func fakeSinks() *sinks {
	return &sinks{httpAddr: "127.0.0.1:18080", smtp: fakeListener{addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 18025}}}
}

type fakeListener struct {
	net.Listener
	addr net.Addr
}

func (l fakeListener) Addr() net.Addr { return l.addr }

// TestWorkingConfig: the copy of a configuration whose endpoints at
// 127.0.0.1:9, in the file and in its secret files, point at the sinks
// (testdata/working/, testdata/working.golden).
func TestWorkingConfig(t *testing.T) {
	src := t.TempDir()
	require.NoError(t, os.CopyFS(src, os.DirFS("testdata/working")))
	dir := t.TempDir()
	path, cleanup, err := workingConfig(filepath.Join(src, "sred.yml"), dir, fakeSinks())
	require.NoError(t, err)
	require.Equal(t, src, filepath.Dir(path), "next to the configuration, so that its relative paths resolve")
	var b strings.Builder
	b.WriteString("== the configuration\n")
	b.WriteString(readFile(t, path))
	// The secret files it names that held 127.0.0.1:9, rewritten in dir.
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		b.WriteString("== " + e.Name() + "\n")
		b.WriteString(readFile(t, filepath.Join(dir, e.Name())))
	}
	golden(t, "working.golden", strings.NewReplacer(src, "$CONFIG_DIR", dir, "$DIR").Replace(b.String()))
	cleanup()
	_, err = os.Stat(path)
	require.ErrorIs(t, err, fs.ErrNotExist, "cleanup removes the copy")
	require.Equal(t, readFile(t, "testdata/working/secrets/slack_url"), readFile(t, filepath.Join(src, "secrets/slack_url")), "the secret files are left as they were")
}

// TestWorkingConfigExample: in examples/sred.yml's working copy, and in the
// secret files it names, no endpoint is left at 127.0.0.1:9 but in the
// comments.
func TestWorkingConfigExample(t *testing.T) {
	src := t.TempDir()
	require.NoError(t, os.CopyFS(src, os.DirFS("../../examples")))
	dir := t.TempDir()
	s := fakeSinks()
	path, cleanup, err := workingConfig(filepath.Join(src, "sred.yml"), dir, s)
	require.NoError(t, err)
	defer cleanup()
	text := readFile(t, path)
	for i, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		require.NotContains(t, line, refused, "line %d", i+1)
	}
	require.Contains(t, text, "smarthost: 127.0.0.1:18025\n    require_tls: false\n")
	require.Equal(t, 5, strings.Count(text, "http://127.0.0.1:18080/"), "webhook, pagerduty, sms, phone and push")
	files, err := filepath.Glob(filepath.Join(dir, "working-*"))
	require.NoError(t, err)
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
		b := readFile(t, f)
		require.NotContains(t, b, refused, f)
		require.Contains(t, b, "http://127.0.0.1:18080/", f)
		require.Contains(t, text, f, "the copy names the rewritten secret file")
	}
	require.ElementsMatch(t, []string{"working-slack_webhook_url", "working-teams_webhook_url", "working-mattermost_webhook_url"}, names)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}
