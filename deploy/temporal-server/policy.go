package main

// The hypervisor's access policy for the Temporal frontend, in one table.
//
// Who is calling comes from the client certificate alone (the frontend
// requires one, signed by the cluster's CA; main.go refuses to start without
// that): its subject's common name picks a role.
//
//	CN=hv-temporal-system  Temporal's own system worker (schedules, batch,
//	                       deletions) connecting back to its frontend: everything.
//	CN=hv-worker           the hypervisor's workers and the cluster's operator
//	                       tooling: everything.
//	CN=hv-ui               the Web UI server: read-only APIs.
//	any other CN           an agent's client: the rows below, nothing else.
//
// An agent's client may send updates, signals and queries, read, and start a
// plain session (src/client.ts createSession starts sessionWorkflow). It may
// not: start with a cron schedule, eager execution, carried results or a
// conflict policy that terminates the running session; start any other
// workflow type (sagas are the session's children); signal-with-start or
// update-with-start; terminate, cancel, reset, delete, pause or re-option a
// workflow; touch schedules or batch operations; poll or answer tasks (that is
// being the worker); or administer namespaces and search attributes.
// A caller without claims is refused everything but the health check.

import (
	"context"
	"fmt"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/api"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// Role is what a certificate's common name makes its holder.
type Role string

const (
	RoleSystem Role = "system" // Temporal's own system worker
	RoleWorker Role = "worker" // the hypervisor's workers
	RoleReader Role = "reader" // the Web UI
	RoleAgent  Role = "agent"  // an agent's client
)

// Certificate common names (certs.go issues them).
const (
	SystemCN   = "hv-temporal-system"
	WorkerCN   = "hv-worker"
	UICN       = "hv-ui"
	ServerName = "hv-temporal" // the frontend certificate's name, for clients' serverNameOverride
)

// The workflow type agents' clients may start (workflows/definitions.ts SESSION_WORKFLOW).
const SessionWorkflowType = "sessionWorkflow"

// RoleOf maps a client certificate's common name to its role.
func RoleOf(commonName string) Role {
	switch commonName {
	case SystemCN:
		return RoleSystem
	case WorkerCN:
		return RoleWorker
	case UICN:
		return RoleReader
	default:
		return RoleAgent
	}
}

// check inspects a request an agent's client may send only in some forms;
// it returns why the form is refused, or "".
type check func(req any) string

type rule struct {
	allow bool
	check check // for allowed rows: further conditions on the request
}

// agentRules: the WorkflowService methods an agent's client may call beyond
// the read-only ones (api.GetMethodMetadata Access ReadOnly). Everything not
// listed and not read-only is refused. Listed refusals are there to be read.
var agentRules = map[string]rule{
	"UpdateWorkflowExecution":     {allow: true},
	"PollWorkflowExecutionUpdate": {allow: true},
	"SignalWorkflowExecution":     {allow: true},
	"QueryWorkflow":               {allow: true},
	"StartWorkflowExecution":      {allow: true, check: plainSessionStart},

	"SignalWithStartWorkflowExecution": {allow: false},
	"ExecuteMultiOperation":            {allow: false}, // update-with-start
	"TerminateWorkflowExecution":       {allow: false},
	"RequestCancelWorkflowExecution":   {allow: false},
	"ResetWorkflowExecution":           {allow: false},
	"DeleteWorkflowExecution":          {allow: false},
	"UpdateWorkflowExecutionOptions":   {allow: false},
	"CreateSchedule":                   {allow: false},
	"UpdateSchedule":                   {allow: false},
	"PatchSchedule":                    {allow: false},
	"DeleteSchedule":                   {allow: false},
	"StartBatchOperation":              {allow: false},
	"StopBatchOperation":               {allow: false},
	"PollWorkflowTaskQueue":            {allow: false},
	"PollActivityTaskQueue":            {allow: false},
	"RespondWorkflowTaskCompleted":     {allow: false},
	"RespondActivityTaskCompleted":     {allow: false},
}

// plainSessionStart: a session started the way src/client.ts starts one.
func plainSessionStart(req any) string {
	r, ok := req.(*workflowservice.StartWorkflowExecutionRequest)
	if !ok {
		return "not a StartWorkflowExecutionRequest"
	}
	switch {
	case r.GetWorkflowType().GetName() != SessionWorkflowType:
		return fmt.Sprintf("only the worker may start %q workflows", r.GetWorkflowType().GetName())
	case r.GetCronSchedule() != "":
		return "only the worker may start a workflow with a cron schedule"
	case r.GetRequestEagerExecution():
		return "eager execution hands the first workflow task to the caller: only the worker may ask for it"
	case r.GetLastCompletionResult() != nil || r.GetContinuedFailure() != nil:
		return "only the worker may start a workflow with a carried result or failure"
	case r.GetWorkflowIdConflictPolicy() == enumspb.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING ||
		r.GetWorkflowIdReusePolicy() == enumspb.WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING:
		return "a start that terminates the running workflow is a terminate: only the worker may"
	case len(r.GetCompletionCallbacks()) > 0:
		return "only the worker may attach completion callbacks"
	}
	return ""
}

// Decide is the whole policy: may a caller with this role call this API with this request?
// It returns the decision and, when refused, why.
func Decide(role Role, apiName string, req any) (bool, string) {
	if authorization.IsHealthCheckAPI(apiName) {
		return true, ""
	}
	switch role {
	case RoleSystem, RoleWorker:
		return true, ""
	case RoleReader:
		if api.GetMethodMetadata(apiName).Access == api.AccessReadOnly {
			return true, ""
		}
		return false, "the Web UI's certificate is read-only"
	case RoleAgent:
		method, isWorkflowService := strings.CutPrefix(apiName, api.WorkflowServicePrefix)
		if !isWorkflowService {
			return false, "an agent's client may use the WorkflowService only"
		}
		if r, listed := agentRules[method]; listed {
			if !r.allow {
				return false, fmt.Sprintf("%s is for the hypervisor's worker only", method)
			}
			if r.check != nil {
				if why := r.check(req); why != "" {
					return false, why
				}
			}
			return true, ""
		}
		if api.GetMethodMetadata(apiName).Access == api.AccessReadOnly {
			return true, ""
		}
		return false, fmt.Sprintf("%s is for the hypervisor's worker only", method)
	}
	return false, "no role"
}

// claimMapper names the caller by its verified client certificate.
type claimMapper struct{}

func NewClaimMapper() authorization.ClaimMapper { return claimMapper{} }

func (claimMapper) GetClaims(info *authorization.AuthInfo) (*authorization.Claims, error) {
	if info == nil || info.TLSSubject == nil {
		// A bearer token alone names nobody here.
		return nil, nil
	}
	cn := info.TLSSubject.CommonName
	role := RoleOf(cn)
	claims := &authorization.Claims{Subject: cn, Extensions: role}
	switch role {
	case RoleSystem, RoleWorker:
		claims.System = authorization.RoleAdmin
	case RoleReader:
		claims.System = authorization.RoleReader
	}
	return claims, nil
}

// Only a caller with a certificate has claims.
func (claimMapper) AuthInfoRequired() bool { return true }

type authorizer struct{ logger log.Logger }

func NewAuthorizer(logger log.Logger) authorization.Authorizer { return authorizer{logger: logger} }

func (a authorizer) Authorize(_ context.Context, claims *authorization.Claims, target *authorization.CallTarget) (authorization.Result, error) {
	var role Role
	subject := "(no certificate)"
	if claims != nil {
		role, _ = claims.Extensions.(Role)
		subject = claims.Subject
	}
	ok, why := Decide(role, target.APIName, target.Request)
	if ok {
		return authorization.Result{Decision: authorization.DecisionAllow}, nil
	}
	if a.logger != nil {
		a.logger.Info("hypervisor policy refused a call",
			tag.NewStringTag("subject", subject), tag.NewStringTag("api", target.APIName), tag.NewStringTag("reason", why))
	}
	// Returned as an error so that, with the dynamic config
	// frontend.exposeAuthorizerErrors (deploy/temporal/dynamicconfig/cluster.yaml),
	// the caller reads why; without it the frontend sends its generic
	// "Request unauthorized." — refused either way.
	return authorization.Result{Decision: authorization.DecisionDeny, Reason: why},
		serviceerror.NewPermissionDenied(fmt.Sprintf("hypervisor policy: %s (certificate %s)", why, subject), why)
}
