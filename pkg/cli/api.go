package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	promconfig "github.com/prometheus/common/config"
)

// Every srectl command that talks to sred exits with the same codes when
// the call fails (docs/rules.md, "srectl exit codes"):
//
//   - 1: --http.config.file is missing or invalid (a configuration file);
//   - 2: --sred.url is not an http or https URL (a flag value of the wrong form);
//   - 3: sred is unreachable or answered with a server error (5xx);
//   - 4: sred refused the request (any 4xx: forbidden, not found, conflict,
//     invalid request, a wrong credential).
//
// A command keeps its own documented verdict beside these (`srectl gate`
// and `srectl change record` exit 1 when the deploy gate denies).
const (
	exitConfig      = 1
	exitUsage       = 2
	exitUnavailable = 3
	exitRefused     = 4
)

// sredAPI is the client of the sred API, shared by every srectl command that
// talks to sred.
type sredAPI struct {
	url string
	// httpConfigFile is a prometheus/common HTTP client configuration
	// (TLS, basic auth, authorization, proxy), as amtool's --http.config.file.
	httpConfigFile string
	timeout        time.Duration
}

// TokenEnv names the environment variable holding the API token srectl
// sends as "Authorization: Bearer <token>" when --http.config.file is not
// given (a file given with it says how to authenticate instead).
const TokenEnv = "SRECTL_TOKEN"

// reachError is the error of a request that got no answer from sred. When
// nothing listens at --sred.url (a sred not started, or started on another
// port), it says how to start one and how to name another address.
func (a *sredAPI) reachError(err error) error {
	if errors.Is(err, syscall.ECONNREFUSED) {
		err = fmt.Errorf("%w (is sred running? `make run` starts one on localhost:8095; "+
			"--sred.url or SRECTL_SRED_URL names another, now %s)", err, a.url)
	}
	return &ExitError{Code: exitUnavailable, Err: fmt.Errorf("reach sred: %w", err)}
}

// answerError is the error of a request sred answered with an error. A
// 401 without --http.config.file says what srectl sent: no credentials
// (SRECTL_TOKEN unset), or a token whose SHA-256 sred does not list.
func (a *sredAPI) answerError(code int, errorType, msg string) error {
	if code == http.StatusUnauthorized {
		switch {
		case a.httpConfigFile != "":
			// The file says which credentials: its reader knows them.
		case strings.TrimSpace(os.Getenv(TokenEnv)) != "":
			msg += " (srectl sent $" + TokenEnv + ": is its SHA-256 under tokens in sred's auth.users_file?)"
		default:
			msg += " (srectl sent none: set " + TokenEnv + " to an API token, or --http.config.file)"
		}
	}
	return &apiError{code: code, errorType: errorType, msg: msg}
}

// flags declares --sred.url, --timeout and --http.config.file on cmd.
func (a *sredAPI) flags(cmd *kingpin.CmdClause) {
	cmd.Flag("sred.url", "URL of the sred API.").Envar("SRECTL_SRED_URL").Default("http://localhost:8095").StringVar(&a.url)
	a.clientFlags(cmd)
}

// clientFlags declares --timeout and --http.config.file on cmd, for a
// command that declares its own --sred.url.
func (a *sredAPI) clientFlags(cmd *kingpin.CmdClause) {
	cmd.Flag("timeout", "Timeout of each API request.").Default("30s").DurationVar(&a.timeout)
	cmd.Flag("http.config.file", "HTTP client configuration file for the sred API (TLS, basic_auth, authorization), in the format of Prometheus' http_config, as amtool's --http.config.file.").
		PlaceHolder("<filename>").StringVar(&a.httpConfigFile)
}

// apiError is an error answer of the sred API: exit code 3 when sred or what
// it depends on (Prometheus) fails (5xx), 4 when sred refuses the request.
type apiError struct {
	code int
	// errorType is the answer's errorType ("refused", "not_found",
	// "bad_data", ...), empty when the answer is not sred's JSON envelope.
	errorType string
	msg       string
}

func (e *apiError) Error() string { return fmt.Sprintf("sred answered %d: %s", e.code, e.msg) }

// ExitCode implements exitCoder.
func (e *apiError) ExitCode() int {
	if e.code >= 500 {
		return exitUnavailable
	}
	return exitRefused
}

// httpClient returns the client of the sred API: the default client, or one
// built from --http.config.file.
func (a *sredAPI) httpClient() (*http.Client, error) {
	if a.httpConfigFile == "" {
		return http.DefaultClient, nil
	}
	cfg, _, err := promconfig.LoadHTTPConfigFile(a.httpConfigFile)
	if err != nil {
		return nil, a.configError(fmt.Errorf("load http.config.file %s: %w", a.httpConfigFile, err))
	}
	c, err := promconfig.NewClientFromConfig(*cfg, "srectl")
	if err != nil {
		return nil, a.configError(fmt.Errorf("http.config.file %s: %w", a.httpConfigFile, err))
	}
	return c, nil
}

// configError is the error of an invalid --http.config.file: exit 1, as
// every invalid configuration file.
func (a *sredAPI) configError(err error) error {
	return &ExitError{Code: exitConfig, Err: err}
}

// urlError is the error of a --sred.url that is not an http or https URL:
// exit 2, as every flag value of the wrong form.
func (a *sredAPI) urlError() error {
	return &ExitError{Code: exitUsage, Err: fmt.Errorf("invalid --sred.url %q: want an http or https URL (http://localhost:8095)", a.url)}
}

// call sends method path?query with body (as JSON, when not nil) and headers
// hdr, and decodes the data of the answer's envelope into out (when not nil).
func (a *sredAPI) call(method, path string, query url.Values, hdr http.Header, body, out any) error {
	u, err := url.Parse(strings.TrimSuffix(a.url, "/") + path)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return a.urlError()
	}
	u.RawQuery = query.Encode()
	var rd io.Reader
	if raw, ok := body.(rawBody); ok {
		// An io.Reader that is not a *bytes.Reader: sent chunked, read
		// as it goes.
		rd = raw
	} else if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	timeout := a.timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return a.urlError()
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok := strings.TrimSpace(os.Getenv(TokenEnv)); tok != "" && a.httpConfigFile == "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	client, err := a.httpClient()
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return a.reachError(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return &ExitError{Code: exitUnavailable, Err: fmt.Errorf("read sred answer: %w", err)}
	}
	var env struct {
		Status    string          `json:"status"`
		Data      json.RawMessage `json:"data"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
	}
	success := resp.StatusCode/100 == 2
	if err := json.Unmarshal(raw, &env); err != nil {
		if success {
			// A 2xx that is not sred's envelope (a proxy's page, a cut
			// answer) is sred failing, not refusing: exit 3.
			return &ExitError{Code: exitUnavailable, Err: fmt.Errorf("sred answered %d: not a JSON answer: %s", resp.StatusCode, strings.TrimSpace(string(raw)))}
		}
		return a.answerError(resp.StatusCode, "", strings.TrimSpace(string(raw)))
	}
	if success && env.Status != "success" {
		// A 2xx whose envelope says it failed: sred did not refuse the
		// request (that is a 4xx), its answer is broken: exit 3, as an
		// answer that cannot be decoded.
		return &ExitError{Code: exitUnavailable, Err: fmt.Errorf("sred answered %d with status %q: %s", resp.StatusCode, env.Status, env.Error)}
	}
	if !success {
		return a.answerError(resp.StatusCode, env.ErrorType, env.Error)
	}
	if out != nil {
		if err := json.Unmarshal(env.Data, out); err != nil {
			return &ExitError{Code: exitUnavailable, Err: fmt.Errorf("decode sred answer: %w", err)}
		}
	}
	return nil
}

// get calls GET path?query and decodes the answer's data into out.
func (a *sredAPI) get(path string, query url.Values, hdr http.Header, out any) error {
	return a.call(http.MethodGet, path, query, hdr, nil, out)
}
