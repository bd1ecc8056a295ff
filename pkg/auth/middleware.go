package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/rootuip/sre/pkg/envelope"
	"github.com/rootuip/sre/pkg/limits"
)

// Anonymous is the principal of every request in the explicit no-auth mode:
// it may do everything, and the console shows that sred runs without
// authentication (Principal.NoAuth).
var Anonymous = Principal{Name: "anonymous", Role: RoleAdmin, NoAuth: true}

// Options configure Middleware.
type Options struct {
	// Authenticator checks basic-auth passwords and bearer tokens, and
	// ends the streams (Access.Stream) of credentials a reload revokes.
	Authenticator *Authenticator
	// NoAuth is the explicit no-auth mode for local trials: every request
	// acts as Anonymous.
	NoAuth bool
	// Routes is the access table (Routes when nil).
	Routes map[string]Access
	// Route returns the ServeMux pattern r matches ("" when none).
	Route func(r *http.Request) string
	// OnWrite, when set, is called after every state-changing request
	// (POST, PUT, PATCH, DELETE) that reached its handler, with the
	// principal (zero for public routes), the route pattern and the status
	// code answered; not for webhook deliveries, nor for a request to a
	// public route answered 400 or above. The audit log hangs here.
	OnWrite func(r *http.Request, p Principal, route string, code int)
	// WebhookToken reports whether the webhooks check their own bearer
	// credential (webhook.bearer_token). When they do, webhook routes skip
	// user authentication; when they do not, a webhook delivery must
	// authenticate as a user (basic auth or token) with RoleResponder.
	WebhookToken func() bool
	Logger       *slog.Logger
}

// Middleware authenticates every request, puts its Principal in the
// request's context, has the error answers (envelope.Error) of a principal
// who is not an admin, and of public routes but the webhooks, cut the
// server's file paths to their base names (RedactPaths), enforces the role its route declares in the access
// table, refuses cross-origin state-changing browser requests (the checks
// of http.CrossOriginProtection: Sec-Fetch-Site, then Origin against Host)
// and requires Content-Type: application/json on the bodies of JSON routes.
// A body with a Content-Encoding (gzip, ...) is refused 415 on every
// route: no handler decompresses one.
//
// A request whose body came chunked is answered with Connection: close
// (see closeIfChunked).
//
// A client over its limit of failed attempts (Limits) is answered 429 with
// Retry-After. The context of a Stream route's request is canceled, with a
// cause wrapping ErrRevoked, when a reload revokes its credentials.
//
// A route missing from the table needs RoleAdmin (fail closed).
func Middleware(o Options, next http.Handler) http.Handler {
	if o.Routes == nil {
		o.Routes = Routes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Authenticator == nil {
		o.Authenticator = NewAuthenticator(nil, Limits{})
	}
	cop := http.NewCrossOriginProtection()
	var warned sync.Map
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		closeIfChunked(w, r)
		route := ""
		if o.Route != nil {
			route = o.Route(r)
		}
		if route == "" {
			// No route: the mux answers 404 or 405.
			next.ServeHTTP(w, r)
			return
		}
		acc, declared := o.Routes[route]
		if !declared {
			if _, seen := warned.LoadOrStore(route, true); !seen {
				o.Logger.Warn("Route declares no role in the access table; only admins may use it", "route", route)
			}
			acc = Access{Role: RoleAdmin}
		}
		// No handler decompresses a body: a compressed one would be read
		// as its compressed bytes ("invalid UTF-8 at byte offset 1").
		if ce := r.Header.Get("Content-Encoding"); r.ContentLength != 0 && ce != "" && !strings.EqualFold(ce, "identity") {
			w.Header().Set("Accept-Encoding", "identity")
			fail(w, r, http.StatusUnsupportedMediaType, "bad_data", fmt.Sprintf("Content-Encoding %s is not supported: send the body uncompressed", limits.Quote(ce)))
			return
		}
		write := isWrite(r.Method)
		if acc.Webhook && !o.NoAuth && (o.WebhookToken == nil || !o.WebhookToken()) {
			acc = Access{Role: RoleResponder, Webhook: true}
		} else if acc.Webhook {
			acc.Public = true
		}
		if acc.Public {
			// Public routes carry no credentials (health, readiness, ack
			// links holding their own token); webhooks check their own
			// bearer credential, whatever the users are.
			// Webhook deliveries are recorded on their incidents, not in
			// the audit log. A public write (an acknowledgement link) is
			// recorded only when it acted (status below 400): anyone may
			// send forged or expired links without credentials, and each
			// would otherwise add a row to the audit log.
			if !acc.Webhook && !o.NoAuth {
				w = &redactWriter{w}
			}
			serve(w, r, next, o, Principal{}, route, write && !acc.Webhook, true)
			return
		}
		if write || acc.Records {
			cr := r
			if !write {
				// A GET that stores is checked as a write would be
				// (CrossOriginProtection lets every GET through).
				c := *r
				c.Method = http.MethodPost
				cr = &c
			}
			if err := cop.Check(cr); err != nil {
				fail(w, r, http.StatusForbidden, "forbidden", "cross-origin request refused: "+err.Error())
				return
			}
		}
		v, err := o.authenticate(r)
		var limited *LimitedError
		switch {
		case err == nil:
		case errors.As(err, &limited):
			w.Header().Set("Retry-After", strconv.FormatInt(limited.RetryAfterSeconds(), 10))
			fail(w, r, http.StatusTooManyRequests, "too_many_requests", err.Error())
			return
		case errors.Is(err, ErrUnauthenticated):
			w.Header().Set("WWW-Authenticate", `Basic realm="sred", charset="UTF-8"`)
			fail(w, r, http.StatusUnauthorized, "unauthorized", err.Error())
			return
		default:
			// The client left while its credentials waited for a
			// comparison: nobody reads the answer.
			fail(w, r, http.StatusServiceUnavailable, "unavailable", "authentication abandoned: "+err.Error())
			return
		}
		p := v.p
		if !p.Role.Allows(acc.Role) {
			fail(w, r, http.StatusForbidden, "forbidden", fmt.Sprintf("%s has role %s; %s needs %s", p.Name, p.Role, route, acc.Role))
			return
		}
		if write && acc.JSON && r.ContentLength != 0 {
			ct := r.Header.Get("Content-Type")
			mt, _, err := mime.ParseMediaType(ct)
			switch {
			case err == nil && mt == "application/json":
			case err == nil && acc.YAML && (mt == "application/yaml" || mt == "application/x-yaml" || mt == "text/yaml"):
			case acc.YAML:
				fail(w, r, http.StatusUnsupportedMediaType, "bad_data", fmt.Sprintf("Content-Type must be application/yaml or application/json, got %s", limits.Quote(ct)))
				return
			default:
				fail(w, r, http.StatusUnsupportedMediaType, "bad_data", fmt.Sprintf("Content-Type must be application/json, got %s", limits.Quote(ct)))
				return
			}
		}
		if acc.Stream && !o.NoAuth {
			ctx, end := o.Authenticator.hold(r.Context(), v)
			defer end()
			r = r.WithContext(ctx)
		}
		if !p.Role.Allows(RoleAdmin) && !acc.Webhook {
			w = &redactWriter{w}
		}
		serve(w, r, next, o, p, route, write && !acc.Webhook && !acc.Query, false)
	})
}

// closeIfChunked has the server close the connection after answering a
// request whose body came chunked. net/http serves a request carrying
// both Transfer-Encoding: chunked and Content-Length with the chunked body
// and drops the Content-Length before any handler sees it; RFC 9112
// section 6.3 requires the connection closed after such a request, as a
// proxy in front that framed the body by its Content-Length would read the
// rest of the chunked body as a second request (request smuggling). The two
// cannot be told apart here, so every chunked request closes its
// connection; Alertmanager and the usual clients send Content-Length
// bodies and keep theirs.
func closeIfChunked(w http.ResponseWriter, r *http.Request) {
	if len(r.TransferEncoding) > 0 {
		w.Header().Set("Connection", "close")
	}
}

// serve calls next with p in the context and, for a write, o.OnWrite;
// for a public route (public) only when the answer is below 400.
func serve(w http.ResponseWriter, r *http.Request, next http.Handler, o Options, p Principal, route string, write, public bool) {
	if p != (Principal{}) {
		r = r.WithContext(NewContext(r.Context(), p))
	} else if o.NoAuth {
		r = r.WithContext(NewContext(r.Context(), Anonymous))
	}
	if !write || o.OnWrite == nil {
		next.ServeHTTP(w, r)
		return
	}
	sw := envelope.NewStatusWriter(w)
	next.ServeHTTP(sw, r)
	if public && sw.Code() >= 400 {
		return
	}
	o.OnWrite(r, p, route, sw.Code())
}

func (o Options) authenticate(r *http.Request) (verdict, error) {
	if o.NoAuth {
		return verdict{p: Anonymous}, nil
	}
	return o.Authenticator.authenticate(r)
}

func isWrite(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// fail answers an error: the API's JSON error envelope under /api/, plain
// text elsewhere. The path is read as the mux matched it, cleaned:
// "//api/v1/audit" and "/x/../api/v1/audit" are API routes, refused as
// such.
func fail(w http.ResponseWriter, r *http.Request, code int, typ, msg string) {
	if !strings.HasPrefix(path.Clean(r.URL.Path), "/api/") {
		http.Error(w, msg, code)
		return
	}
	envelope.Error(w, code, typ, msg)
}

// ActorOf returns who acted in a request: the authenticated principal's
// name. A name chosen by the request body (claimed) is used only when no
// one is authenticated (the explicit no-auth mode, or a handler called
// without the middleware); otherwise it is ignored. fallback names the actor
// when neither exists.
func ActorOf(ctx context.Context, claimed, fallback string) string {
	if p, ok := FromContext(ctx); ok && !p.NoAuth && p.Name != "" {
		return p.Name
	}
	if claimed != "" {
		return claimed
	}
	return fallback
}

// Allowed reports whether the request's principal may do what needs min. A
// request without a principal (a handler called without the middleware) is
// allowed: the middleware is where roles are enforced.
func Allowed(ctx context.Context, min Role) bool {
	p, ok := FromContext(ctx)
	return !ok || p.Role.Allows(min)
}
