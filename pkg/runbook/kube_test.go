package runbook

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/kube"
	"github.com/rootuip/sre/pkg/store"
	sretest "github.com/rootuip/sre/pkg/testutil"
)

// apiServer plays the Kubernetes API server for one deployment: it answers
// the GET and PUT of a scale step and records the requests it receives.
type apiServer struct {
	*httptest.Server
	mu       sync.Mutex
	replicas int32
	requests []string
}

func newAPIServer(t *testing.T, replicas int32) *apiServer {
	s := &apiServer{replicas: replicas}
	// TLS, as API servers are: client-go sends bearer tokens over https only.
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		req := fmt.Sprintf("%s %s %s", r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"))
		if r.URL.Path != "/apis/apps/v1/namespaces/prod/deployments/api" {
			s.requests = append(s.requests, req)
			http.NotFound(w, r)
			return
		}
		switch r.Method {
		case http.MethodGet:
		case http.MethodPut:
			// client-go sends protobuf or JSON: decode as the API server does.
			b, _ := io.ReadAll(r.Body)
			obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(b, nil, nil)
			d, ok := obj.(*appsv1.Deployment)
			if err != nil || !ok || d.Spec.Replicas == nil {
				t.Errorf("PUT %s: bad deployment %T (%v)", r.Header.Get("Content-Type"), obj, err)
				http.Error(w, "bad deployment", http.StatusBadRequest)
				return
			}
			req += fmt.Sprintf(" %s replicas=%d resourceVersion=%s", r.Header.Get("Content-Type"), *d.Spec.Replicas, d.ResourceVersion)
			s.replicas = *d.Spec.Replicas
		default:
			http.Error(w, "unexpected method", http.StatusMethodNotAllowed)
			return
		}
		s.requests = append(s.requests, req)
		n := s.replicas
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&appsv1.Deployment{
			TypeMeta:   metav1.TypeMeta{Kind: "Deployment", APIVersion: "apps/v1"},
			ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "prod", ResourceVersion: fmt.Sprint(len(s.requests))},
			Spec:       appsv1.DeploymentSpec{Replicas: &n},
		})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *apiServer) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// caData is the base64 PEM of the certificate of s, for a kubeconfig.
func caData(s *httptest.Server) string {
	if s == nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}))
}

// writeKubeconfig writes a kubeconfig with two contexts: staging (the
// current one) and prod, each with its own cluster, CA and token.
func writeKubeconfig(t *testing.T, staging, prod *httptest.Server) string {
	url := func(s *httptest.Server, name string) string {
		if s == nil {
			return "https://" + name + ".invalid"
		}
		return s.URL
	}
	file := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(file, fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
  - {name: staging, cluster: {server: %q, certificate-authority-data: %q}}
  - {name: prod, cluster: {server: %q, certificate-authority-data: %q}}
users:
  - {name: staging-user, user: {token: staging-token}}
  - {name: prod-user, user: {token: prod-token}}
contexts:
  - {name: staging, context: {cluster: staging, user: staging-user}}
  - {name: prod, context: {cluster: prod, user: prod-user}}
current-context: staging
`, url(staging, "staging"), caData(staging), url(prod, "prod"), caData(prod)), 0o600))
	return file
}

// The client of pkg/kube talks to the cluster of the kubeconfig context the
// configuration names (else the current one) with that context's
// credentials, and a reload that changes the context makes the engine use
// a new client.
func TestKubernetesClientKubeconfig(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		staging, prod := newAPIServer(t, 3), newAPIServer(t, 7)
		kubeconfig := writeKubeconfig(t, staging.Server, prod.Server)
		rb := mustParse(t, `
name: scale
matchers: ['alertname="X"']
steps:
  - name: scale-up
    kubernetes: {action: scale, namespace: prod, deployment: api, by: 2, max: 10}
`)
		cfg := testConfig()
		cfg.Kubernetes = KubernetesConfig{Kubeconfig: kubeconfig, Context: "prod"}
		set, err := NewSet(cfg, rb)
		require.NoError(t, err)
		rec := &recorder{}
		e, err := New(Options{DB: db, Incidents: rec, Kubernetes: newKubernetesClient}, cfg, set)
		require.NoError(t, err)
		startEngine(t, e)

		trigger(t, db, e, newIncident("INC-1", map[string]string{"alertname": "X"}), incident.ChangeCreated)
		run := waitRun(t, e, "INC-1", RunSucceeded, RunFailed)
		require.Equal(t, RunSucceeded, run.Status, run.Reason)
		require.Equal(t, "deployment prod/api scaled from 7 to 9 replicas", stepAudit(t, run, "scale-up").Output)
		require.Equal(t, []string{
			"GET /apis/apps/v1/namespaces/prod/deployments/api Bearer prod-token",
			"PUT /apis/apps/v1/namespaces/prod/deployments/api?fieldManager=sred-runbook Bearer prod-token application/vnd.kubernetes.protobuf replicas=9 resourceVersion=1",
		}, prod.received())
		require.Empty(t, staging.received(), "the other context's cluster is not contacted")

		// Reload: no context set, the kubeconfig's current context (staging) is used.
		cfg.Kubernetes.Context = ""
		require.NoError(t, e.Update(cfg, set))
		trigger(t, db, e, newIncident("INC-2", map[string]string{"alertname": "X"}), incident.ChangeCreated)
		run = waitRun(t, e, "INC-2", RunSucceeded, RunFailed)
		require.Equal(t, RunSucceeded, run.Status, run.Reason)
		require.Equal(t, "deployment prod/api scaled from 3 to 5 replicas", stepAudit(t, run, "scale-up").Output)
		require.Equal(t, []string{
			"GET /apis/apps/v1/namespaces/prod/deployments/api Bearer staging-token",
			"PUT /apis/apps/v1/namespaces/prod/deployments/api?fieldManager=sred-runbook Bearer staging-token application/vnd.kubernetes.protobuf replicas=5 resourceVersion=1",
		}, staging.received())
		require.Len(t, prod.received(), 2, "nothing more went to prod")
	})
}

func TestKubernetesClientErrors(t *testing.T) {
	kubeconfig := writeKubeconfig(t, nil, nil)
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tc := range []struct {
		cfg  KubernetesConfig
		want string
	}{
		{KubernetesConfig{Kubeconfig: kubeconfig, Context: "nope"}, "kubeconfig " + kubeconfig + `: context "nope" does not exist`},
		{KubernetesConfig{Kubeconfig: missing}, "kubeconfig " + missing + ": stat " + missing + ": no such file or directory"},
		{KubernetesConfig{}, "in-cluster kubernetes config: unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined"},
	} {
		_, err := newKubernetesClient(tc.cfg)
		require.EqualError(t, err, tc.want)
	}
}

// newKubernetesClient is the client sred passes in (cmd/sred).
func newKubernetesClient(c KubernetesConfig) (Kubernetes, error) {
	return kube.NewDeployments(c.Kubeconfig, c.Context)
}
