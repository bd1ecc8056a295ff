package runbook

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/kube"
)

func parseAction(t *testing.T, src string, vars map[string]string) (*Action, error) {
	t.Helper()
	var a Action
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&a); err != nil {
		return nil, err
	}
	return &a, a.Compile(vars)
}

func TestActionParse(t *testing.T) {
	vars := map[string]string{"weight": "[0-9]{1,3}", "version": "v[0-9.]+", "opt": "[a-z]{0,3}"}
	for _, tc := range []struct {
		name, src, err string
	}{
		{"exec", "exec: {command: [/usr/bin/true, '{{ .Vars.weight }}']}", ""},
		{"http", "http: {endpoint: proxy, path: '/weight/{{ .Vars.weight }}', method: put}", ""},
		{"kubernetes", "kubernetes: {action: scale, namespace: prod, deployment: 'api-{{ .Vars.version }}', replicas: 3}", ""},
		{"patch", `kubernetes: {action: patch, namespace: prod, service: api, patch: '{"spec": {"selector": {"version": "{{ .Vars.version }}"}}}'}`, ""},
		{"patch needs one target", "kubernetes: {action: patch, namespace: prod, service: api, deployment: api, patch: '{}'}", "patch needs exactly one of deployment or service"},
		{"patch needs a patch", "kubernetes: {action: patch, namespace: prod, service: api}", "patch needs patch (a JSON merge patch)"},
		{"service is for patch", "kubernetes: {action: rollout_restart, namespace: prod, deployment: api, service: api}", "service and patch are for patch only"},
		{"promql is not an action", "promql: {query: up}", "action: want exec, http or kubernetes (got promql)"},
		{"two kinds", "exec: {command: [/bin/true]}\nhttp: {endpoint: x}", "want exactly one of"},
		{"name is the caller's", "name: x\nexec: {command: [/bin/true]}", `action: unknown field "name"`},
		{"unknown field", "exec: {command: [/bin/true], shell: true}", `unknown field "shell"`},
		{"undeclared variable", "exec: {command: [/bin/echo, '{{ .Vars.service }}']}", `uses variable "service", which is not a declared variable`},
		{"shell guard", "exec: {command: [sh, -c, 'echo {{ .Vars.version }}']}", "exec.command runs the shell sh"},
		{"program is no template", "exec: {command: ['{{ .Vars.version }}']}", "exec.command[0]) cannot be a template"},
		{"labels of alerts are not here", "exec: {command: [/bin/echo, '{{ .IncidentID }}x']}", ""},
		{"empty value before a dash", "exec: {command: [/bin/echo, '{{ .Vars.opt }}-n']}", `the argument starts with "-n" when label "opt" is empty`},
		{"no incident before a dash", "exec: {command: [/bin/echo, '{{ .IncidentID }}-n']}", `the argument starts with "-n" when .IncidentID is empty (as in an action)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseAction(t, tc.src, vars)
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.err)
		})
	}
}

func TestActuateExec(t *testing.T) {
	act, err := parseAction(t, "exec: {command: [/bin/echo, 'weight={{ .Vars.weight }}'], env: {V: '{{ .Vars.version }}'}}",
		map[string]string{"weight": "[0-9]{1,3}", "version": "v[0-9]+"})
	require.NoError(t, err)
	cfg := testConfig()
	cfg.MaxOutputBytes = 8
	a, err := NewActuator(cfg, nil, clock.NewManual(time.Unix(0, 0)))
	require.NoError(t, err)

	res := a.Actuate(context.Background(), act, map[string]string{"weight": "10", "version": "v2"})
	require.True(t, res.OK(), res.Error)
	require.Equal(t, []string{"/bin/echo", "weight=10"}, res.Input["argv"])
	require.Equal(t, 0, *res.Code)
	require.Equal(t, "weight=1\n[... 2 bytes truncated]", res.Output, "output capped at max_output_bytes")

	// A value that does not match its pattern runs nothing.
	res = a.Actuate(context.Background(), act, map[string]string{"weight": "10; rm -rf /", "version": "v2"})
	require.False(t, res.OK())
	require.Contains(t, res.Error, `label "weight" value "10; rm -rf /" does not match`)
	require.Nil(t, res.Code, "nothing was started")
	require.NotNil(t, res.Err())

	// The action's timeout bounds it; the whole process group dies.
	slow, err := parseAction(t, "timeout: 50ms\nexec: {command: [/bin/sleep, '30']}", nil)
	require.NoError(t, err)
	res = a.Actuate(context.Background(), slow, nil)
	require.Equal(t, StepTimeout, res.Status)
	require.Contains(t, res.Error, "timed out after 50ms")
}

func TestActuateHTTP(t *testing.T) {
	var (
		mu  sync.Mutex
		got []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, fmt.Sprintf("%s %s %s", r.Method, r.URL.Path, b))
		mu.Unlock()
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusConflict)
		}
		fmt.Fprint(w, "weight set")
	}))
	defer srv.Close()
	act, err := parseAction(t, `http: {endpoint: proxy, method: PUT, path: /weight, body: '{"canary": {{ .Vars.weight }}}'}`, map[string]string{"weight": "[0-9]{1,3}"})
	require.NoError(t, err)
	require.Equal(t, "proxy", act.Endpoint())
	a, err := NewActuator(testConfig(), nil, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"proxy"}, a.MissingEndpoints("proxy"))
	res := a.Actuate(context.Background(), act, map[string]string{"weight": "50"})
	require.False(t, res.OK())
	require.Contains(t, res.Error, `http endpoint "proxy" is not configured`)

	cfg := testConfig()
	cfg.HTTPEndpoints = map[string]HTTPEndpoint{"proxy": {URL: srv.URL}}
	require.NoError(t, a.Update(cfg))
	require.Empty(t, a.MissingEndpoints("proxy"))
	res = a.Actuate(context.Background(), act, map[string]string{"weight": "50"})
	require.True(t, res.OK(), res.Error)
	require.Equal(t, 200, *res.Code)
	require.Equal(t, "weight set", res.Output)
	require.Equal(t, []string{`PUT /weight {"canary": 50}`}, got)

	bad, err := NewAction(time.Minute, nil, &HTTPStep{Endpoint: "proxy", Method: "POST", Path: "/fail"}, nil)
	require.NoError(t, err)
	require.NoError(t, bad.Compile(nil))
	require.Equal(t, time.Minute, bad.Timeout())
	res = a.Actuate(context.Background(), bad, nil)
	require.False(t, res.OK())
	require.Equal(t, 409, *res.Code)
	require.Contains(t, res.Error, "unexpected status 409")

	out, err := yaml.Marshal(bad)
	require.NoError(t, err)
	require.Contains(t, string(out), "endpoint: proxy")
}

func TestActuateKubernetes(t *testing.T) {
	two := int32(2)
	kc := fake.NewClientset(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "api-canary", Namespace: "prod"}, Spec: appsv1.DeploymentSpec{Replicas: &two}})
	act, err := parseAction(t, "kubernetes: {action: scale, namespace: prod, deployment: 'api-{{ .Vars.track }}', replicas: 4}", map[string]string{"track": "stable|canary"})
	require.NoError(t, err)
	a, err := NewActuator(testConfig(), func(KubernetesConfig) (Kubernetes, error) { return &kube.Deployments{Client: kc}, nil }, nil)
	require.NoError(t, err)
	res := a.Actuate(context.Background(), act, map[string]string{"track": "canary"})
	require.True(t, res.OK(), res.Error)
	require.Equal(t, "deployment prod/api-canary scaled from 2 to 4 replicas", res.Output)

	// A blue-green switch: the service's selector patched to the new version.
	_, err = kc.CoreV1().Services("prod").Create(context.Background(), &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "prod"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "api", "version": "v1"}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	sw, err := parseAction(t, `kubernetes: {action: patch, namespace: prod, service: api, patch: '{"spec": {"selector": {"version": "{{ .Vars.version }}"}}}'}`,
		map[string]string{"version": "v[0-9]+"})
	require.NoError(t, err)
	res = a.Actuate(context.Background(), sw, map[string]string{"version": "v2"})
	require.True(t, res.OK(), res.Error)
	require.Equal(t, "service prod/api patched", res.Output)
	svc, err := kc.CoreV1().Services("prod").Get(context.Background(), "api", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"app": "api", "version": "v2"}, svc.Spec.Selector)

	// A patch that does not render to a JSON object changes nothing.
	bad, err := parseAction(t, `kubernetes: {action: patch, namespace: prod, deployment: api-canary, patch: '{"spec": {{ .Vars.version }}'}`,
		map[string]string{"version": "v[0-9]+"})
	require.NoError(t, err)
	res = a.Actuate(context.Background(), bad, map[string]string{"version": "v2"})
	require.False(t, res.OK())
	require.Contains(t, res.Error, "patch of deployment prod/api-canary is not a JSON object")
}

// TestHTTPEndpointRedirects: an http step follows no redirect by default
// (a 307 to another host would re-send the request, body and headers, to a
// URL not in http_endpoints); with follow_redirects: true it follows them
// to the endpoint's own scheme, host and port only.
func TestHTTPEndpointRedirects(t *testing.T) {
	var (
		mu     sync.Mutex
		stolen []string
	)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		stolen = append(stolen, fmt.Sprintf("%s %s %s %s", r.Method, r.URL.Path, r.Header.Get("Authorization"), b))
		mu.Unlock()
		fmt.Fprint(w, "secret from elsewhere")
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
		case "/here":
			http.Redirect(w, r, "/landing", http.StatusTemporaryRedirect)
		default:
			fmt.Fprint(w, "landed "+r.URL.Path)
		}
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name, config, path string
		code               int // 0: no response
		output, err        string
	}{
		{"default: not followed", "", "/away", 307, "", "unexpected status 307"},
		{"default: not followed on the same host", "", "/here", 307, "", "unexpected status 307"},
		{"follow_redirects: false", "follow_redirects: false", "/away", 307, "", "unexpected status 307"},
		{"follow_redirects: true, another host", "follow_redirects: true", "/away", 0, "", `redirect to ` + other.URL + ` refused: not the endpoint "ep"`},
		{"follow_redirects: true, the same host", "follow_redirects: true", "/here", 200, "landed /landing", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cfg Config
			require.NoError(t, yaml.Unmarshal([]byte(fmt.Sprintf("http_endpoints: {ep: {url: %q, http_config: {authorization: {credentials: s3cret}, %s}}}", srv.URL, tc.config)), &cfg))
			a, err := NewActuator(cfg, nil, nil)
			require.NoError(t, err)
			act, err := parseAction(t, fmt.Sprintf(`http: {endpoint: ep, method: POST, path: %s, body: '{"weight": {{ .Vars.weight }}}'}`, tc.path), map[string]string{"weight": "[0-9]{1,3}"})
			require.NoError(t, err)
			res := a.Actuate(context.Background(), act, map[string]string{"weight": "50"})
			if tc.code == 0 {
				require.Nil(t, res.Code)
			} else {
				require.NotNil(t, res.Code, res.Error)
				require.Equal(t, tc.code, *res.Code)
			}
			require.Equal(t, tc.err == "", res.OK(), res.Error)
			require.Contains(t, res.Error, tc.err)
			require.Equal(t, tc.output, res.Output)
			mu.Lock()
			defer mu.Unlock()
			require.Empty(t, stolen)
		})
	}
}
