package app

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/envelope"
	"github.com/rootuip/sre/pkg/loglimit"
)

// MetricHTTPRefusedRequests counts the requests answered 401, 403 or 429.
const MetricHTTPRefusedRequests = "sre_http_refused_requests_total"

// refusalLogEvery is how often a client's refusals are logged: its first
// refusal is logged at once, the next ones at most once per interval, with
// how many were not logged since.
const refusalLogEvery = time.Minute

// refusals counts and logs the requests refused for their credentials, role
// or limit (401, 403, 429), whoever refused them (the authentication
// middleware, a handler checking its own secret such as the deploy gate's
// override token or an acknowledge link). They are not written to the audit
// log: anyone may send them, and each would add a row.
type refusals struct {
	counter *prometheus.CounterVec
	log     *loglimit.Limiter
	logger  *slog.Logger
}

func newRefusals(reg prometheus.Registerer, clk clock.Clock, logger *slog.Logger) *refusals {
	return &refusals{
		counter: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: MetricHTTPRefusedRequests,
			Help: "Requests refused for their credentials (401), their role, a cross-origin write or a wrong secret such as a deploy-gate override token or a forged acknowledge link (403), or a limit of failed attempts (429), whoever refused them; not the Flagger pre-rollout hook's 403 when the gate denies (a decision, in the success envelope).",
		}, []string{"code", "route"}),
		log:    loglimit.New(clk, refusalLogEvery, auth.DefaultClients),
		logger: logger,
	}
}

// refused reports whether code is a refusal refusals counts.
func refused(code int) bool {
	return code == http.StatusUnauthorized || code == http.StatusForbidden || code == http.StatusTooManyRequests
}

// note counts a request answered code on route and logs it, at most once
// per client and refusalLogEvery.
func (f *refusals) note(r *http.Request, route string, code int) {
	if !refused(code) {
		return
	}
	f.counter.WithLabelValues(strconv.Itoa(code), route).Inc()
	client := auth.ClientOf(r.RemoteAddr)
	ok, held := f.log.Allow(client)
	if !ok {
		return
	}
	f.logger.Warn("Request refused", "client", client, "code", code, "route", route, "not_logged_before", held,
		"note", "at most one line per client per "+refusalLogEvery.String()+"; every refusal is counted in "+MetricHTTPRefusedRequests)
}

// wrap calls next and notes its answer when it is a refusal.
func (f *refusals) wrap(next http.Handler, route func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &codeWriter{StatusWriter: envelope.MakeStatusWriter(w), f: f, r: r, route: route}
		next.ServeHTTP(cw, r)
		if !cw.Decision() {
			f.note(r, route(r), cw.Code())
		}
	})
}

// codeWriter keeps the status code answered and whether the answer is a
// decision rather than a refusal (envelope.StatusWriter), and logs the
// errors an answer does not show with the request's route
// (web.ErrorLogger).
type codeWriter struct {
	envelope.StatusWriter
	f     *refusals
	r     *http.Request
	route func(*http.Request) string
}

// LogError implements web.ErrorLogger: an error the answer does not show
// (the store's) is logged with the request's route.
func (c *codeWriter) LogError(msg string, err error) {
	c.f.logger.Error(msg, "route", c.route(c.r), "err", err)
}
