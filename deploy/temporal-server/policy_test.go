package main

import (
	"context"
	"crypto/x509/pkix"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/api"
	"go.temporal.io/server/common/authorization"
)

const ws = api.WorkflowServicePrefix

func session() *workflowservice.StartWorkflowExecutionRequest {
	return &workflowservice.StartWorkflowExecutionRequest{
		Namespace:    "default",
		WorkflowId:   "hv-session-s1",
		WorkflowType: &commonpb.WorkflowType{Name: SessionWorkflowType},
	}
}

func TestRoles(t *testing.T) {
	for cn, want := range map[string]Role{
		"hv-temporal-system": RoleSystem, "hv-worker": RoleWorker, "hv-ui": RoleReader,
		"hv-agent": RoleAgent, "hv-agent-7": RoleAgent, "": RoleAgent, "HV-WORKER": RoleAgent, "hv-worker ": RoleAgent,
	} {
		if got := RoleOf(cn); got != want {
			t.Errorf("RoleOf(%q) = %s, want %s", cn, got, want)
		}
	}
}

func TestPolicy(t *testing.T) {
	cron := session()
	cron.CronSchedule = "* * * * *"
	eager := session()
	eager.RequestEagerExecution = true
	carried := session()
	carried.LastCompletionResult = &commonpb.Payloads{}
	terminating := session()
	terminating.WorkflowIdConflictPolicy = enumspb.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING
	terminatingReuse := session()
	terminatingReuse.WorkflowIdReusePolicy = enumspb.WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING
	saga := session()
	saga.WorkflowType.Name = "sagaWorkflow"

	cases := []struct {
		role  Role
		api   string
		req   any
		allow bool
	}{
		// Agents' clients: updates, signals, queries, reads and a plain session start.
		{RoleAgent, ws + "UpdateWorkflowExecution", nil, true},
		{RoleAgent, ws + "PollWorkflowExecutionUpdate", nil, true},
		{RoleAgent, ws + "SignalWorkflowExecution", nil, true},
		{RoleAgent, ws + "QueryWorkflow", nil, true},
		{RoleAgent, ws + "DescribeWorkflowExecution", nil, true},
		{RoleAgent, ws + "GetWorkflowExecutionHistory", nil, true},
		{RoleAgent, ws + "ListWorkflowExecutions", nil, true},
		{RoleAgent, ws + "CountWorkflowExecutions", nil, true},
		{RoleAgent, ws + "DescribeNamespace", nil, true},
		{RoleAgent, ws + "GetSystemInfo", nil, true},
		{RoleAgent, "/grpc.health.v1.Health/Check", nil, true},
		{RoleAgent, ws + "StartWorkflowExecution", session(), true},
		// … and nothing that starts otherwise, ends, rewinds or schedules.
		{RoleAgent, ws + "StartWorkflowExecution", cron, false},
		{RoleAgent, ws + "StartWorkflowExecution", eager, false},
		{RoleAgent, ws + "StartWorkflowExecution", carried, false},
		{RoleAgent, ws + "StartWorkflowExecution", terminating, false},
		{RoleAgent, ws + "StartWorkflowExecution", terminatingReuse, false},
		{RoleAgent, ws + "StartWorkflowExecution", saga, false},
		{RoleAgent, ws + "StartWorkflowExecution", &workflowservice.SignalWorkflowExecutionRequest{}, false},
		{RoleAgent, ws + "SignalWithStartWorkflowExecution", &workflowservice.SignalWithStartWorkflowExecutionRequest{}, false},
		{RoleAgent, ws + "ExecuteMultiOperation", nil, false},
		{RoleAgent, ws + "TerminateWorkflowExecution", nil, false},
		{RoleAgent, ws + "RequestCancelWorkflowExecution", nil, false},
		{RoleAgent, ws + "ResetWorkflowExecution", nil, false},
		{RoleAgent, ws + "DeleteWorkflowExecution", nil, false},
		{RoleAgent, ws + "UpdateWorkflowExecutionOptions", nil, false},
		{RoleAgent, ws + "CreateSchedule", nil, false},
		{RoleAgent, ws + "UpdateSchedule", nil, false},
		{RoleAgent, ws + "DeleteSchedule", nil, false},
		{RoleAgent, ws + "StartBatchOperation", nil, false},
		{RoleAgent, ws + "PollWorkflowTaskQueue", nil, false},
		{RoleAgent, ws + "PollActivityTaskQueue", nil, false},
		{RoleAgent, ws + "RespondWorkflowTaskCompleted", nil, false},
		{RoleAgent, ws + "RespondActivityTaskCompleted", nil, false},
		{RoleAgent, ws + "RecordActivityTaskHeartbeat", nil, false},
		{RoleAgent, ws + "ResetStickyTaskQueue", nil, false},
		{RoleAgent, ws + "RegisterNamespace", nil, false},
		{RoleAgent, ws + "UpdateNamespace", nil, false},
		{RoleAgent, ws + "PauseActivity", nil, false},
		{RoleAgent, ws + "SomethingAddedLater", nil, false},
		{RoleAgent, api.OperatorServicePrefix + "AddSearchAttributes", nil, false},
		{RoleAgent, api.OperatorServicePrefix + "ListSearchAttributes", nil, false},
		{RoleAgent, api.AdminServicePrefix + "DescribeMutableState", nil, false},
		// The worker and Temporal's system worker: everything.
		{RoleWorker, ws + "TerminateWorkflowExecution", nil, true},
		{RoleWorker, ws + "SignalWithStartWorkflowExecution", nil, true},
		{RoleWorker, ws + "StartWorkflowExecution", cron, true},
		{RoleWorker, ws + "ResetWorkflowExecution", nil, true},
		{RoleWorker, ws + "CreateSchedule", nil, true},
		{RoleWorker, ws + "PollWorkflowTaskQueue", nil, true},
		{RoleWorker, api.OperatorServicePrefix + "AddSearchAttributes", nil, true},
		{RoleSystem, ws + "StartWorkflowExecution", cron, true},
		{RoleSystem, ws + "PollWorkflowTaskQueue", nil, true},
		// The Web UI: reads only.
		{RoleReader, ws + "ListWorkflowExecutions", nil, true},
		{RoleReader, ws + "QueryWorkflow", nil, true},
		{RoleReader, api.OperatorServicePrefix + "ListSearchAttributes", nil, true},
		{RoleReader, ws + "SignalWorkflowExecution", nil, false},
		{RoleReader, ws + "TerminateWorkflowExecution", nil, false},
		{RoleReader, ws + "StartWorkflowExecution", session(), false},
		// No role (no certificate): the health check only.
		{"", "/grpc.health.v1.Health/Check", nil, true},
		{"", ws + "GetSystemInfo", nil, true},
		{"", ws + "DescribeNamespace", nil, false},
		{"", ws + "SignalWorkflowExecution", nil, false},
	}
	for _, c := range cases {
		ok, why := Decide(c.role, c.api, c.req)
		if ok != c.allow {
			t.Errorf("%s %s: allowed=%v (%s), want %v", c.role, c.api, ok, why, c.allow)
		}
		if !ok && why == "" {
			t.Errorf("%s %s: refused without a reason", c.role, c.api)
		}
	}
}

func TestInterceptorWiring(t *testing.T) {
	cm := NewClaimMapper()
	az := NewAuthorizer(nil)
	claims, err := cm.GetClaims(&authorization.AuthInfo{TLSSubject: &pkix.Name{CommonName: "hv-agent"}})
	if err != nil || claims.Subject != "hv-agent" {
		t.Fatalf("claims %+v, %v", claims, err)
	}
	deny, err := az.Authorize(context.Background(), claims, &authorization.CallTarget{APIName: ws + "TerminateWorkflowExecution", Namespace: "default"})
	var denied *serviceerror.PermissionDenied
	if deny.Decision != authorization.DecisionDeny || deny.Reason == "" || !errors.As(err, &denied) ||
		!strings.Contains(denied.Error(), "TerminateWorkflowExecution is for the hypervisor's worker only (certificate hv-agent)") {
		t.Errorf("agent terminate: %+v, %v", deny, err)
	}
	worker, _ := cm.GetClaims(&authorization.AuthInfo{TLSSubject: &pkix.Name{CommonName: "hv-worker"}})
	allow, err := az.Authorize(context.Background(), worker, &authorization.CallTarget{APIName: ws + "TerminateWorkflowExecution", Namespace: "default"})
	if allow.Decision != authorization.DecisionAllow || err != nil {
		t.Errorf("worker terminate: %+v, %v", allow, err)
	}
	// A bearer token without a certificate names nobody.
	none, _ := cm.GetClaims(&authorization.AuthInfo{AuthToken: "Bearer x"})
	if none != nil {
		t.Errorf("token-only claims: %+v", none)
	}
	noClaims, _ := az.Authorize(context.Background(), nil, &authorization.CallTarget{APIName: ws + "StartWorkflowExecution", Request: session()})
	if noClaims.Decision != authorization.DecisionDeny {
		t.Errorf("no claims: %+v", noClaims)
	}
}

func TestCerts(t *testing.T) {
	dir := t.TempDir()
	written, err := WriteCerts(dir, []string{"localhost", "127.0.0.1"}, []string{"hv-agent"})
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != 6 {
		t.Errorf("wrote %v", written)
	}
	st, err := os.Stat(filepath.Join(dir, "hv-worker.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("worker key mode: %v %v", st.Mode(), err)
	}
	again, err := WriteCerts(dir, nil, []string{"hv-agent", "hv-agent-2"})
	if err != nil || len(again) != 1 {
		t.Errorf("second run wrote %v, %v (want only the new agent's)", again, err)
	}
	ca, _ := readPair(dir, "ca")
	agent, _ := readPair(dir, "hv-agent-2")
	if err := agent.cert.CheckSignatureFrom(ca.cert); err != nil {
		t.Errorf("a later leaf is not signed by the first CA: %v", err)
	}
}
