package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestIncidentsImportStreams: `srectl incidents import` sends the file as
// it reads it: sred has the first line before the rest of the file exists.
// It read the whole file into memory first (up to the 1 GiB sred takes),
// so here it would wait for an end of file that the test writes only once
// sred has seen the first line. The file is a named pipe written line by
// line.
func TestIncidentsImportStreams(t *testing.T) {
	firstLine := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		br := bufio.NewReader(r.Body)
		line, err := br.ReadString('\n')
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		firstLine <- line
		rest, _ := io.ReadAll(br)
		n := 1 + bytes.Count(rest, []byte("\n"))
		fmt.Fprintf(w, `{"status":"success","data":{"imported":%d,"skipped":0}}`, n)
	}))
	defer srv.Close()

	fifo := filepath.Join(t.TempDir(), "incidents.jsonl")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	done := make(chan struct{})
	var code int
	var stdout, stderr bytes.Buffer
	go func() {
		defer close(done)
		code = Main([]string{"incidents", "import", "--sred.url=" + srv.URL, fifo}, &stdout, &stderr)
	}()
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = w.WriteString(`{"line":1}` + "\n")
	require.NoError(t, err)
	select {
	case got := <-firstLine:
		require.Equal(t, `{"line":1}`+"\n", got)
	case <-time.After(2 * time.Minute):
		// Not a timing assumption: without streaming the line never
		// comes, since the rest of the file is written after it.
		w.Close()
		t.Fatal("sred did not get the first line before the end of the file: the import was read whole first")
	}
	_, err = w.WriteString(`{"line":2}` + "\n" + `{"line":3}` + "\n")
	require.NoError(t, err)
	require.NoError(t, w.Close())
	<-done
	require.Equal(t, 0, code, stderr.String())
	require.Equal(t, "imported 3 incidents, skipped 0 that exist\n", stdout.String())
}
