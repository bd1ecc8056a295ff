package status

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestPageIcon: the page names its icon, and the handler serves it, so a
// browser does not ask for /favicon.ico, which the status listener answers
// 404 (a console error on every visit).
func TestPageIcon(t *testing.T) {
	var b bytes.Buffer
	if err := page.Execute(&b, view{Page: &Page{Title: "Service status"}}); err != nil {
		t.Fatal(err)
	}
	const link = `<link rel="icon" href="/status/favicon.svg" type="image/svg+xml">`
	if !strings.Contains(b.String(), link) {
		t.Fatalf("the page does not link its icon (%s):\n%s", link, b.String())
	}
	mux := http.NewServeMux()
	NewHandler(nil, nil).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/status/favicon.svg")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/svg+xml" || !bytes.HasPrefix(body, []byte("<svg")) {
		t.Fatalf("GET /status/favicon.svg = %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	found := false
	for _, r := range Routes {
		found = found || r == "GET /status/favicon.svg"
	}
	if !found {
		t.Errorf("Routes %v lacks the icon", Routes)
	}
}
