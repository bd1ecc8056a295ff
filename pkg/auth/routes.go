package auth

// Access is what a route needs.
type Access struct {
	// Role is the least role allowed.
	Role Role
	// Public routes need no credentials: health and readiness probes, and
	// the acknowledgement links of notifications (the link's token is the
	// credential).
	Public bool
	// Webhook routes are called by Alertmanager and check their own bearer
	// credential (webhook.bearer_token), whatever the users are.
	Webhook bool
	// JSON routes take a JSON body: a state-changing request with a body
	// must say Content-Type: application/json.
	JSON bool
	// YAML routes take a spec file: with JSON set, application/yaml
	// (application/x-yaml, text/yaml) is accepted too.
	YAML bool
	// Stream routes are long-lived (the live event streams, the CPU
	// profile and execution trace that run for their ?seconds=): a request
	// is ended when a reload removes its user or token, changes its
	// password or token, or changes its role, lower or higher: what a
	// stream shows depends on the role it was opened with (Middleware).
	Stream bool
	// Query routes are POSTs that compute an answer from the body and
	// change nothing (a simulation, a check): they are not recorded as
	// writes (Options.OnWrite, the audit log), which any viewer could
	// otherwise grow at will.
	Query bool
	// Records routes are GETs that store something (the deploy gate
	// records each decision, in the name of the caller): cross-origin
	// protection applies to them as to writes, so that another site cannot
	// make a signed-in browser record decisions in its user's name.
	Records bool
}

var (
	public   = Access{Public: true}
	webhook  = Access{Webhook: true}
	viewer   = Access{Role: RoleViewer}
	viewerJS = Access{Role: RoleViewer, JSON: true}
	// viewerStream routes are the live event streams.
	viewerStream = Access{Role: RoleViewer, Stream: true}
	// viewerSpec routes check a spec file posted as YAML or JSON.
	viewerSpec = Access{Role: RoleViewer, JSON: true, YAML: true, Query: true}
	// viewerQuery routes compute an answer from a JSON body.
	viewerQuery = Access{Role: RoleViewer, JSON: true, Query: true}
	// viewerRecords routes are GETs that store what they answer.
	viewerRecords = Access{Role: RoleViewer, Records: true}
	responder     = Access{Role: RoleResponder, JSON: true}
	admin         = Access{Role: RoleAdmin, JSON: true}
	// adminStream routes are the profiles that run for their ?seconds=
	// (ended as a stream by a reload that revokes their credentials).
	adminStream = Access{Role: RoleAdmin, JSON: true, Stream: true}
	// form routes are the console's HTML forms (cross-origin protected,
	// form-encoded bodies).
	responderForm = Access{Role: RoleResponder}
)

// Routes is the access table: every route sred serves, by its ServeMux
// pattern, with the role it needs. A new route must be added here; one that
// is not needs RoleAdmin (and TestEveryRouteDeclaresARole fails).
var Routes = map[string]Access{
	// Probes and exporter.
	"GET /-/healthy": public,
	"GET /-/ready":   public,
	"POST /-/reload": admin,
	"GET /metrics":   viewer,

	// Go runtime profiles.
	"GET /debug/pprof/":        admin,
	"GET /debug/pprof/cmdline": admin,
	"GET /debug/pprof/profile": adminStream,
	"GET /debug/pprof/symbol":  admin,
	"POST /debug/pprof/symbol": Access{Role: RoleAdmin},
	"GET /debug/pprof/trace":   adminStream,

	// Alertmanager webhooks.
	"POST /api/v1/webhook/alertmanager": webhook,
	"POST /api/v1/webhook/watchdog":     webhook,

	// Incidents.
	"GET /api/v1/incidents":                                 viewer,
	"GET /api/v1/incidents/{id}":                            viewer,
	"GET /api/v1/incidents/{id}/timeline":                   viewer,
	"GET /api/v1/services":                                  viewer,
	"GET /api/v1/reports/noise":                             viewer,
	"POST /api/v1/incidents/{id}/ack":                       responder,
	"POST /api/v1/incidents/{id}/investigate":               responder,
	"POST /api/v1/incidents/{id}/assign":                    responder,
	"POST /api/v1/incidents/{id}/resolve":                   responder,
	"POST /api/v1/incidents/{id}/snooze":                    responder,
	"POST /api/v1/incidents/{id}/notes":                     responder,
	"POST /api/v1/incidents/{id}/impact":                    responder,
	"POST /api/v1/incidents/{id}/postmortem/complete":       responder,
	"GET /api/v1/incidents/{id}/postmortem":                 viewer,
	"GET /api/v1/incidents/{id}/action-items":               viewer,
	"POST /api/v1/incidents/{id}/action-items":              responder,
	"PATCH /api/v1/incidents/{id}/action-items/{item}":      responder,
	"POST /api/v1/incidents/{id}/status-updates":            responder,
	"POST /api/v1/incidents/{id}/split":                     responder,
	"GET /api/v1/incidents/export":                          viewer,
	"POST /api/v1/incidents/import":                         admin,
	"POST /api/v1/incidents/{id}/merge":                     responder,
	"GET /api/v1/events":                                    viewerStream,
	"GET /api/v1/stream":                                    viewerStream,
	"GET /api/v1/status":                                    viewer,
	"GET /status":                                           public,
	"GET /status.json":                                      public,
	"GET /status/feed.atom":                                 public,
	"GET /status/status.css":                                public,
	"GET /status/favicon.svg":                               public,
	"GET /api/v1/audit":                                     admin,
	"GET /api/v1/incidents/{id}/silences":                   viewer,
	"GET /api/v1/escalation/incidents/{id}":                 viewer,
	"POST /api/v1/escalation/incidents/{id}/escalate":       responder,
	"GET /api/v1/escalation/maintenance":                    viewer,
	"POST /api/v1/escalation/maintenance":                   responder,
	"DELETE /api/v1/escalation/maintenance/{id}":            responder,
	"POST /api/v1/escalation/simulate":                      viewerQuery,
	"GET /ack/ack.css":                                      public,
	"GET /ack/{token}":                                      public,
	"POST /ack/{token}":                                     public,
	"GET /api/v1/oncall":                                    viewer,
	"GET /api/v1/oncall/schedules":                          viewer,
	"GET /api/v1/oncall/schedules/{name}/shifts":            viewer,
	"GET /api/v1/oncall/schedules/{name}/gaps":              viewer,
	"GET /api/v1/oncall/schedules/{name}/overrides":         viewer,
	"PUT /api/v1/oncall/schedules/{name}/overrides":         responder,
	"DELETE /api/v1/oncall/schedules/{name}/overrides/{id}": responder,
	"PUT /api/oncall/schedule":                              admin,
	"GET /api/v1/slos":                                      viewer,
	"GET /api/v1/slos/{service}/{slo}":                      viewer,
	"GET /api/v1/gate":                                      viewerRecords,
	"GET /api/v1/services/{service}/events":                 viewer,
	"GET /api/v1/sla/report/{customer}":                     viewer,
	"GET /api/v1/runbooks":                                  viewer,
	"GET /api/v1/runbooks/runs":                             viewer,
	"GET /api/v1/runbooks/runs/{id}":                        viewer,
	"POST /api/v1/runbooks/runs/{id}/approve":               responder,
	"POST /api/v1/runbooks/runs/{id}/cancel":                responder,
	"GET /api/v1/runbooks/kill-switch":                      viewer,
	"PUT /api/v1/runbooks/kill-switch":                      admin,
	"GET /api/v1/runbooks/locks":                            viewer,
	"GET /api/v1/runbooks/coverage":                         viewer,

	// Change records (docs/changes.md): CI, Terraform, Argo CD, Flux and
	// the rollout engines record changes as responders.
	"POST /api/v1/changes":               responder,
	"GET /api/v1/changes":                viewer,
	"GET /api/v1/changes/{id}":           viewer,
	"POST /api/v1/changes/{id}/finish":   responder,
	"POST /api/v1/changes/flagger":       responder,
	"POST /api/v1/changes/argo-rollouts": responder,
	"POST /api/v1/changes/flux":          responder,

	// Rollout analysis (docs/rollouts.md): the Argo Rollouts web metric
	// provider and the Flagger webhooks only read Prometheus and the gate.
	// A run and Flagger's confirm-promotion and rollback hooks, which
	// Flagger calls at every analysis interval, store nothing: queries,
	// not audited writes. The pre-rollout hook records a gate decision.
	"GET /api/v1/analysis":                            viewer,
	"GET /api/v1/analysis/{name}":                     viewer,
	"GET /api/v1/analysis/{name}/run":                 viewer,
	"POST /api/v1/analysis/{name}/run":                viewerQuery,
	"POST /api/v1/analysis/flagger/pre-rollout":       viewerJS,
	"POST /api/v1/analysis/flagger/confirm-promotion": viewerQuery,
	"POST /api/v1/analysis/flagger/rollback":          viewerQuery,

	// Incidents opened by hand.
	"POST /api/v1/incidents": responder,

	// Chaos experiments: reading and validating is open to viewers,
	// running, stopping and halting is for admins.
	"GET /api/v1/chaos/experiments":             viewer,
	"POST /api/v1/chaos/validate":               viewerSpec,
	"GET /api/v1/chaos/experiments/{name}/plan": viewer,
	"POST /api/v1/chaos/experiments/{name}/run": admin,
	"GET /api/v1/chaos/runs":                    viewer,
	"GET /api/v1/chaos/runs/{id}":               viewer,
	"POST /api/v1/chaos/runs/{id}/stop":         admin,
	"POST /api/v1/chaos/runs/{id}/approve":      responder,
	"GET /api/v1/chaos/runs/{id}/report":        viewer,
	"POST /api/v1/chaos/halt":                   admin,

	// Rollouts without Kubernetes (the stage runner).
	"GET /api/v1/scaling/policies":       viewer,
	"GET /api/v1/scaling/decisions":      viewer,
	"GET /api/v1/scaling/backtest":       viewer,
	"GET /api/v1/rollouts/definitions":   viewer,
	"GET /api/v1/rollouts":               viewer,
	"POST /api/v1/rollouts":              admin,
	"GET /api/v1/rollouts/{id}":          viewer,
	"POST /api/v1/rollouts/{id}/promote": admin,
	"POST /api/v1/rollouts/{id}/pause":   responder,
	"POST /api/v1/rollouts/{id}/abort":   responder,

	// Console.
	"GET /{$}":                                      viewer,
	"GET /console/static/":                          viewer,
	"GET /slos/{service}/{slo}":                     viewer,
	"GET /incidents":                                viewer,
	"GET /incidents/new":                            viewer,
	"GET /incidents/{id}":                           viewer,
	"POST /incidents":                               responderForm,
	"POST /incidents/{id}/{action}":                 responderForm,
	"POST /incidents/{id}/action-items/{item}/done": responderForm,
	"GET /oncall":                                   viewer,
	"GET /runbooks":                                 viewer,
	"POST /runbooks/runs/{id}/{action}":             responderForm,
	"GET /chaos":                                    viewer,
	"GET /scaling":                                  viewer,
	"GET /rollouts":                                 viewer,
	"GET /audit":                                    admin,
	"GET /changes":                                  viewer,
	"GET /graph":                                    viewer,
	"GET /noise":                                    viewer,
	"GET /chaos/runs/{id}":                          viewer,
	"POST /chaos/runs/{id}/approve":                 responderForm,
}
