package stream_test

import (
	"bufio"
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/receiver"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/stream"
	sretest "github.com/rootuip/sre/pkg/testutil"
)

// clientsEnv makes the test binary a swarm of WebSocket subscribers
// (runClients) instead of running tests: BenchmarkWSIngest starts it as a
// separate process.
const clientsEnv = "SRE_STREAM_BENCH_CLIENTS"

func TestMain(m *testing.M) {
	if url := os.Getenv(clientsEnv); url != "" {
		if err := runClients(url, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "stream bench clients:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Subscribers of BenchmarkWSIngest: ingestSubs clients, of which the first
// ingestAll take every event (as a console or an archiver would) and the
// others one service each of ingestServices (as a team's tool would).
const (
	ingestSubs     = 1000
	ingestAll      = 100
	ingestServices = 100
	ingestSenders  = 16 // concurrent webhook deliveries
)

// ingestBurst is the events of a burst: 10,000 by default, fewer on a
// machine too busy to run them in minutes (the figure to report is 10,000).
var ingestBurst = flag.Int("stream.burst", 10000, "events per burst of BenchmarkWSIngest")

// ingestClients chooses how the subscriber process reads: "frames" reads
// the WebSocket frames itself (a header, the payload skipped, a pong for a
// ping), "library" reads each message through coder/websocket's Reader as
// a tool using the library would. Both count every event message of every
// subscriber; frames costs the process about a tenth of the CPU per
// message, which on a machine where the subscribers share the server's
// cores (they stand for tools on other machines) leaves that CPU to the
// server.
var ingestClients = flag.String("stream.clients", "frames", `how BenchmarkWSIngest's subscribers read: "frames" or "library"`)

func subscribeMessage(i int) string {
	if i < ingestAll {
		return `{}`
	}
	return fmt.Sprintf(`{"services":["svc-%d"]}`, i%ingestServices)
}

// BenchmarkWSIngest measures the product's ingestion with and without
// WebSocket subscribers: Alertmanager webhook deliveries over HTTP into the
// incident service on a real SQLite store (durable commits), whose events
// reach the stream hub through the event bus, as in sred. Each operation
// is one round of two bursts of at least 10,000 events, one into a server
// without subscribers and one into an identical server with 1,000
// subscribers (100 taking every event, 900 one service each), in
// alternating order. The subscribers are real WebSocket clients in a
// separate process of the idle scheduling class (SCHED_IDLE through chrt;
// nice 19 where chrt is missing): they stand for tools on other machines,
// and take only the CPU the server leaves.
//
// Reported: ingest_ev/s without (/0) and with (/1000) subscribers, from
// the first delivery until the last is answered; their ratio (goal: at
// least 0.9); drain_ms, from the end of the burst until every subscriber
// had every event it asked for; deliveries/op to subscribers; writes/op,
// the writes (system calls) that carried them;
// dropped_clients; heap_MiB of the
// server with subscribers after a GC; clients_cpu_s, the CPU time of the
// subscriber process; cpu_s/1k/0 and cpu_s/1k/1000, the CPU time of the
// server process per 1,000 events during the bursts into the server
// without and with subscribers (the latter until the subscribers had
// their events: the fan-out's CPU included), and cpu_ratio, the second
// over the first (the figure to compare on a loaded machine);
// loadavg_1m, the machine's load average at the end. The fan-out's own CPU time is in the CPU profile
// (-cpuprofile; the Hub's writer goroutines), see docs/benchmarks.md.
func BenchmarkWSIngest(b *testing.B) {
	bare := newIngestServer(b)
	subd := newIngestServer(b)
	cl := startClients(b, subd.url)
	defer cl.stop(b)

	var t0, t1, cpu0, cpu1 time.Duration
	var ev0, ev1 int64
	var drain time.Duration
	var lat0, lat1 latencies
	b.ResetTimer()
	for n := range b.N {
		order := []*ingestServer{bare, subd}
		if n%2 == 1 {
			order[0], order[1] = subd, bare
		}
		for _, s := range order {
			name := "0"
			if s == subd {
				name = "1000"
			}
			// The bursts are marked in a runtime trace (-trace), for
			// the time of ingestion's goroutines by state in each.
			trace.Log(context.Background(), "wsbench", "start/"+name)
			before := s.perService()
			c := sretest.ProcessCPU()
			l := schedLatencies()
			d, events := s.burst(b)
			if s == bare {
				t0, ev0 = t0+d, ev0+events
				cpu0 += sretest.ProcessCPU() - c
				lat0.add(schedLatencies().sub(l))
				trace.Log(context.Background(), "wsbench", "end/"+name)
				continue
			}
			lat1.add(schedLatencies().sub(l))
			t1, ev1 = t1+d, ev1+events
			// Every subscriber has every event it asked for, or was dropped.
			after := s.perService()
			want := int64(0)
			for i := range ingestSubs {
				if i < ingestAll {
					want += after[""] - before[""]
				} else {
					svc := fmt.Sprintf("svc-%d", i%ingestServices)
					want += after[svc] - before[svc]
				}
			}
			drain += cl.wait(b, want)
			// The fan-out's CPU after the burst (the drain) is the
			// burst's too.
			cpu1 += sretest.ProcessCPU() - c
			trace.Log(context.Background(), "wsbench", "end/"+name)
		}
	}
	b.StopTimer()
	r0, r1 := float64(ev0)/t0.Seconds(), float64(ev1)/t1.Seconds()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(r0, "ingest_ev/s/0")
	b.ReportMetric(r1, "ingest_ev/s/1000")
	b.ReportMetric(r1/r0, "ratio")
	b.ReportMetric(float64(drain.Milliseconds())/float64(b.N), "drain_ms")
	b.ReportMetric(float64(cl.delivered)/float64(b.N), "deliveries/op")
	if cl.delivered > 0 {
		b.ReportMetric(float64(cl.bytes)/float64(cl.delivered), "B/delivery")
	}
	if mfs, err := subd.reg.Gather(); err == nil {
		for _, mf := range mfs {
			if mf.GetName() == "sre_stream_writes_total" {
				b.ReportMetric(mf.GetMetric()[0].GetCounter().GetValue()/float64(b.N), "writes/op")
			}
		}
	}
	b.ReportMetric(testutil.ToFloat64(counter(b, subd.reg, "sre_stream_dropped_clients_total")), "dropped_clients")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap_MiB")
	b.ReportMetric(cl.cpu(b).Seconds(), "clients_cpu_s")
	b.ReportMetric(cpu0.Seconds()/float64(ev0)*1000, "cpu_s/1k/0")
	b.ReportMetric(cpu1.Seconds()/float64(ev1)*1000, "cpu_s/1k/1000")
	b.ReportMetric(cpu1.Seconds()/float64(ev1)/(cpu0.Seconds()/float64(ev0)), "cpu_ratio")
	b.ReportMetric(lat0.mean()*1e6, "sched_µs/0")
	b.ReportMetric(lat1.mean()*1e6, "sched_µs/1000")
	b.ReportMetric(lat0.quantile(0.99)*1e6, "sched_p99_µs/0")
	b.ReportMetric(lat1.quantile(0.99)*1e6, "sched_p99_µs/1000")
	if la, err := loadAverage(); err == nil {
		b.ReportMetric(la, "loadavg_1m")
	}
}

// latencies is a histogram of the Go scheduler's latencies (the time
// goroutines spent runnable before running, /sched/latencies:seconds):
// what ingestion's goroutines wait for a processor beside the fan-out.
type latencies struct {
	buckets []float64
	counts  []uint64
}

func schedLatencies() latencies {
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(s)
	h := s[0].Value.Float64Histogram()
	return latencies{buckets: h.Buckets, counts: slices.Clone(h.Counts)}
}

func (l latencies) sub(o latencies) latencies {
	for i := range l.counts {
		l.counts[i] -= o.counts[i]
	}
	return l
}

func (l *latencies) add(o latencies) {
	if l.counts == nil {
		l.buckets, l.counts = o.buckets, make([]uint64, len(o.counts))
	}
	for i := range o.counts {
		l.counts[i] += o.counts[i]
	}
}

// mid is the middle of bucket i (its lower bound for the last, open one).
func (l latencies) mid(i int) float64 {
	lo, hi := l.buckets[i], l.buckets[i+1]
	if math.IsInf(lo, -1) {
		lo = 0
	}
	if math.IsInf(hi, 1) {
		return lo
	}
	return (lo + hi) / 2
}

func (l latencies) mean() float64 {
	var n uint64
	var sum float64
	for i, c := range l.counts {
		n += c
		sum += float64(c) * l.mid(i)
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

func (l latencies) quantile(q float64) float64 {
	var n uint64
	for _, c := range l.counts {
		n += c
	}
	want := uint64(math.Ceil(q * float64(n)))
	var k uint64
	for i, c := range l.counts {
		k += c
		if k >= want && c > 0 {
			return l.mid(i)
		}
	}
	return 0
}

// loadAverage is the machine's load average over the last minute, which
// says how far the figures of a run can be compared with another's.
func loadAverage() (float64, error) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("/proc/loadavg: %q", b)
	}
	return strconv.ParseFloat(f[0], 64)
}

// ingestServer is sred's ingestion path: the webhook handler, the incident
// service on SQLite, the event bus and the WebSocket hub.
type ingestServer struct {
	url    string
	client *http.Client
	hub    *stream.Hub
	reg    *prometheus.Registry
	next   int // next alert group
	mu     sync.Mutex
	counts map[string]int64 // events published per service, "" all
}

func newIngestServer(b *testing.B) *ingestServer {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	db, err := store.OpenSQLite(ctx, b.TempDir())
	require.NoError(b, err)
	b.Cleanup(func() { db.Close() })
	require.NoError(b, db.Migrate(ctx, incident.Migrations))
	s := &ingestServer{reg: prometheus.NewRegistry(), counts: map[string]int64{}}
	bus := events.NewBus(1024, nil)
	// Counts what the subscribers should get (a hook as cheap as a map
	// increment, in both servers).
	bus.Attach(func(ev events.Event) {
		s.mu.Lock()
		s.counts[""]++
		s.counts[ev.Service]++
		s.mu.Unlock()
	})
	svc, err := incident.NewService(db, incident.DefaultOptions(), nil, bus, nil, s.reg)
	require.NoError(b, err)
	b.Cleanup(func() { svc.Close() })
	s.hub = stream.NewHub(bus, stream.HubOptions{Registerer: s.reg})
	go s.hub.Run(ctx) //nolint:errcheck
	mux := http.NewServeMux()
	mux.Handle("POST "+receiver.Path, receiver.NewHandler(svc, receiver.Options{}, nil, s.reg))
	s.hub.Register(mux)
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	s.url = srv.URL
	s.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: ingestSenders}}
	return s
}

func (s *ingestServer) perService() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]int64, len(s.counts))
	for k, v := range s.counts {
		m[k] = v
	}
	return m
}

// burst delivers new alert groups, ingestSenders at a time, until at least
// ingestBurst events were published; it returns the time taken and the
// number of events.
func (s *ingestServer) burst(b *testing.B) (time.Duration, int64) {
	// Payloads are encoded before the clock starts: the client's work is
	// not sred's. A delivery publishes at least one event.
	payloads := make([][]byte, *ingestBurst)
	for i := range payloads {
		payloads[i] = ingestPayload(s.next + i)
	}
	first := s.hub.Last()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for range ingestSenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s.hub.Last()-first < uint64(*ingestBurst) {
				i := int(next.Add(1)) - 1
				if i >= len(payloads) {
					return
				}
				if err := s.deliver(payloads[i]); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	d := time.Since(start)
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	s.next += int(next.Load())
	return d, int64(s.hub.Last() - first)
}

func (s *ingestServer) deliver(body []byte) error {
	resp, err := s.client.Post(s.url+receiver.Path, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("delivery answered %d", resp.StatusCode)
	}
	return nil
}

// ingestPayload is a firing notification of a new alert group g of
// service svc-<g%100> with 3 alerts.
func ingestPayload(g int) []byte {
	svc := fmt.Sprintf("svc-%d", g%ingestServices)
	m := receiver.Message{
		Version: "4", Status: "firing", Receiver: "sred", ExternalURL: "http://alertmanager:9093",
		GroupKey:          fmt.Sprintf(`{}:{alertname="HighErrorRate", group="%d"}`, g),
		GroupLabels:       map[string]string{"alertname": "HighErrorRate", "group": strconv.Itoa(g)},
		CommonLabels:      map[string]string{"alertname": "HighErrorRate", "service": svc, "severity": "critical"},
		CommonAnnotations: map[string]string{"summary": "error rate above 5%"},
	}
	for i := range 3 {
		m.Alerts = append(m.Alerts, receiver.Alert{
			Status:      "firing",
			Labels:      map[string]string{"alertname": "HighErrorRate", "service": svc, "severity": "critical", "group": strconv.Itoa(g), "instance": fmt.Sprintf("10.0.0.%d:8080", i)},
			Annotations: map[string]string{"summary": "error rate above 5%"},
			StartsAt:    time.Date(2026, 11, 27, 11, 0, 0, 0, time.UTC), GeneratorURL: "http://prometheus:9090/graph",
			Fingerprint: fmt.Sprintf("%08x%08x", g, i),
		})
	}
	body, _ := json.Marshal(m)
	return body
}

// subscriberProc is the subscriber process.
type subscriberProc struct {
	cmd       *exec.Cmd
	in        io.WriteCloser
	out       *bufio.Scanner
	delivered int64
	base      int64
	bytes     int64 // received by the subscribers so far
}

func startClients(b *testing.B, url string) *subscriberProc {
	exe, err := os.Executable()
	require.NoError(b, err)
	args := []string{exe, "-test.run", "^$"}
	// SCHED_IDLE (chrt --idle): the subscribers run only when no other
	// process of the machine wants the CPU, which nice 19 alone does not
	// give (a nice 19 process still takes its share of a busy CPU).
	if chrt, err := exec.LookPath("chrt"); err == nil {
		args = append([]string{chrt, "--idle", "0"}, args...)
	} else if nice, err := exec.LookPath("nice"); err == nil {
		args = append([]string{nice, "-n", "19"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), clientsEnv+"="+strings.Replace(url, "http://", "ws://", 1)+"/api/v1/stream",
		clientsEnv+"_READ="+*ingestClients)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	require.NoError(b, err)
	out, err := cmd.StdoutPipe()
	require.NoError(b, err)
	require.NoError(b, cmd.Start())
	c := &subscriberProc{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	require.True(b, c.out.Scan(), "the subscribers connected")
	require.Equal(b, "ready", c.out.Text())
	return c
}

// wait returns once the subscribers received want more events, or once
// some were dropped (fewer than ingestSubs connected) and the others have
// received nothing more for 5 seconds (the dropped ones' events never
// come; dropped_clients tells), and how long it waited.
func (c *subscriberProc) wait(b *testing.B, want int64) time.Duration {
	start := time.Now()
	last, progress := int64(-1), start
	for {
		fmt.Fprintln(c.in, "count")
		require.True(b, c.out.Scan(), "the subscriber process answers")
		var got, open int64
		_, err := fmt.Sscan(c.out.Text(), &got, &open, &c.bytes)
		require.NoError(b, err)
		if got != last {
			last, progress = got, time.Now()
		}
		if got-c.base >= want || open == 0 || (open < ingestSubs && time.Since(progress) > 5*time.Second) {
			c.delivered += got - c.base
			c.base = got
			return time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (c *subscriberProc) stop(b *testing.B) {
	c.in.Close()
	require.NoError(b, c.cmd.Wait())
}

func (c *subscriberProc) cpu(b *testing.B) time.Duration {
	fmt.Fprintln(c.in, "cpu")
	require.True(b, c.out.Scan())
	d, err := time.ParseDuration(c.out.Text())
	require.NoError(b, err)
	return d
}

// runClients connects ingestSubs subscribers to url, prints "ready", then
// answers the commands read from in: "count" with the events received so
// far and the number of subscribers still connected, "cpu" with the
// process's CPU time.
func runClients(url string, in io.Reader, out io.Writer) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var received, open, bytes atomic.Int64
	var wg sync.WaitGroup
	if os.Getenv(clientsEnv+"_READ") == "frames" {
		conns := make([]net.Conn, 0, ingestSubs)
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for i := range ingestSubs {
			c, r, err := dialFrames(url, subscribeMessage(i))
			if err != nil {
				return err
			}
			conns = append(conns, c)
			open.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer open.Add(-1)
				readFrames(c, r, &received, &bytes)
			}()
		}
		fmt.Fprintln(out, "ready")
		answer(in, out, &received, &open, &bytes)
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
		return nil
	}
	for i := range ingestSubs {
		c, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			return err
		}
		c.SetReadLimit(1 << 20)
		if err := c.Write(ctx, websocket.MessageText, []byte(subscribeMessage(i))); err != nil {
			return err
		}
		if _, _, err := c.Read(ctx); err != nil {
			return err
		}
		open.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer open.Add(-1)
			defer c.CloseNow()
			for {
				// Every message is one event object: counted, read
				// into a reused buffer and discarded, as cheaply as
				// a client can (the subscribers stand for tools on
				// other machines).
				_, r, err := c.Reader(ctx)
				if err != nil {
					return
				}
				n, err := io.Copy(io.Discard, r)
				if err != nil {
					return
				}
				received.Add(1)
				bytes.Add(n)
			}
		}()
	}
	fmt.Fprintln(out, "ready")
	answer(in, out, &received, &open, &bytes)
	cancel()
	wg.Wait()
	return nil
}

// answer answers the benchmark's commands until in ends.
func answer(in io.Reader, out io.Writer, received, open, bytes *atomic.Int64) {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		switch sc.Text() {
		case "count":
			fmt.Fprintln(out, received.Load(), open.Load(), bytes.Load())
		case "cpu":
			fmt.Fprintln(out, sretest.ProcessCPU())
		}
	}
}

// dialFrames opens a WebSocket connection to url by hand (RFC 6455: the
// upgrade request, then masked frames from the client), sends the
// subscribe message and reads the acknowledgement.
func dialFrames(url, sub string) (net.Conn, *bufio.Reader, error) {
	u, err := neturl.Parse(url)
	if err != nil {
		return nil, nil, err
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		return nil, nil, err
	}
	key := make([]byte, 16)
	_, _ = crand.Read(key)
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
		u.Path, u.Host, base64.StdEncoding.EncodeToString(key))
	r := bufio.NewReaderSize(c, 64<<10)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		c.Close()
		return nil, nil, fmt.Errorf("upgrade answered %s", resp.Status)
	}
	if _, err := c.Write(clientFrame(0x1, []byte(sub))); err != nil {
		c.Close()
		return nil, nil, err
	}
	// The acknowledgement (stream.subscribed) is not an event.
	op, p, err := nextFrame(r, true)
	if err != nil || op != 0x1 || !bytes.Contains(p, []byte(stream.TypeSubscribed)) {
		c.Close()
		return nil, nil, fmt.Errorf("subscribe: %d %q %v", op, p, err)
	}
	return c, r, nil
}

// readFrames counts the event messages on c until it ends: each text
// message is one event (the hub sends every event in a single frame;
// a fragmented message is counted at its final frame), its payload
// skipped, not parsed. Pings are answered.
func readFrames(c net.Conn, r *bufio.Reader, received, bytes *atomic.Int64) {
	defer c.Close()
	for {
		h0, err := r.ReadByte()
		if err != nil {
			return
		}
		h1, err := r.ReadByte()
		if err != nil {
			return
		}
		n := int64(h1 & 0x7f)
		switch n {
		case 126, 127:
			k := 2
			if n == 127 {
				k = 8
			}
			n = 0
			for range k {
				b, err := r.ReadByte()
				if err != nil {
					return
				}
				n = n<<8 | int64(b)
			}
		}
		switch op := h0 & 0x0f; op {
		case 0x9: // ping: the pong carries its payload
			p := make([]byte, n)
			if _, err := io.ReadFull(r, p); err != nil {
				return
			}
			if _, err := c.Write(clientFrame(0xA, p)); err != nil {
				return
			}
			continue
		case 0x8: // close
			return
		}
		if _, err := r.Discard(int(n)); err != nil {
			return
		}
		bytes.Add(n)
		if h0&0x80 != 0 && h0&0x0f != 0xA {
			received.Add(1)
		}
	}
}

// nextFrame reads one whole frame from a server (unmasked).
func nextFrame(r *bufio.Reader, keep bool) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := int(h[1] & 0x7f)
	if n >= 126 {
		k := 2
		if n == 127 {
			k = 8
		}
		b := make([]byte, k)
		if _, err := io.ReadFull(r, b); err != nil {
			return 0, nil, err
		}
		n = 0
		for _, x := range b {
			n = n<<8 | int(x)
		}
	}
	p := make([]byte, n)
	_, err := io.ReadFull(r, p)
	return h[0] & 0x0f, p, err
}

// clientFrame is a final, masked frame of a client (RFC 6455, 5.3).
func clientFrame(op byte, p []byte) []byte {
	b := []byte{0x80 | op}
	switch n := len(p); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	var mask [4]byte
	_, _ = crand.Read(mask[:])
	b = append(b, mask[:]...)
	for i, x := range p {
		b = append(b, x^mask[i%4])
	}
	return b
}
