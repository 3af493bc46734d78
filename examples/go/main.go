// Command hv-go-example drives an Agent Hypervisor session from the Temporal
// Go SDK with nothing but the published contract (docs/CONTRACT.md and
// contract/*.schema.json): it starts a session workflow, joins two agents, has
// a join refused, activates the session, starts a saga whose last step fails so
// that the steps before it are compensated, has a query refused, reads the
// session's queries and terminates it.
//
// It runs against the stock worker (`npm start`): the agents declare the
// worker's demo handlers (demo.draft-email, demo.reserve-budget,
// demo.send-email, which fails while its input says simulateOutage).
//
//	TEMPORAL_ADDRESS=127.0.0.1:7233 HV_TASK_QUEUE=agent-hypervisor go run . -session go-1
//
// Each outcome is one line on stdout: its name, a space, and a JSON object.
// Anything unexpected is printed on stderr and exits 1.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
)

const (
	creator = "did:mesh:admin"
	alpha   = "did:mesh:alpha"
	beta    = "did:mesh:beta"
)

// Action is an action an agent declares at join (contract/join.schema.json):
// what runs it and what undoes it are the agent's declaration, never the saga's.
type Action struct {
	ActionID      string  `json:"actionId"`
	Reversibility string  `json:"reversibility"`
	RiskWeight    float64 `json:"riskWeight,omitempty"`
	ExecuteAPI    string  `json:"executeApi"`
	UndoAPI       string  `json:"undoApi"`
}

type JoinRequest struct {
	AgentDid string   `json:"agentDid"`
	SigmaRaw float64  `json:"sigmaRaw"`
	Actions  []Action `json:"actions,omitempty"`
}

type JoinResult struct {
	Did      string  `json:"did"`
	Ring     int     `json:"ring"`
	SigmaEff float64 `json:"sigmaEff"`
}

type Retry struct {
	MaximumAttempts        int `json:"maximumAttempts"`
	InitialIntervalSeconds int `json:"initialIntervalSeconds"`
}

type Step struct {
	ActionID string `json:"actionId"`
	AgentDid string `json:"agentDid"`
	Input    any    `json:"input,omitempty"`
	Retry    *Retry `json:"retry,omitempty"`
}

type StartSagaRequest struct {
	SagaID      string `json:"sagaId"`
	Description string `json:"description"`
	Steps       []Step `json:"steps"`
}

type StartSagaResult struct {
	SagaID     string            `json:"sagaId"`
	WorkflowID string            `json:"workflowId"`
	RunID      string            `json:"runId"`
	Digests    map[string]string `json:"digests"`
}

// SagaOutcome is what a saga's workflow answers (contract/sagaWorkflow.result.schema.json):
// its compact outcome, the fields this example reads.
type SagaOutcome struct {
	Format       int     `json:"format"`
	State        string  `json:"state"`
	FailedStepID *string `json:"failedStepId"`
	Error        *string `json:"error"`
}

// SagaSnapshot is the saga's full snapshot, its sagaState query
// (contract/sagaState.answer.schema.json), the fields this example reads.
type SagaSnapshot struct {
	Saga struct {
		SagaID string `json:"sagaId"`
		State  string `json:"state"`
		Steps  []struct {
			StepID string  `json:"stepId"`
			State  string  `json:"state"`
			Error  *string `json:"error"`
		} `json:"steps"`
	} `json:"saga"`
	FailedStepID      *string  `json:"failedStepId"`
	Error             *string  `json:"error"`
	CompensationOrder []string `json:"compensationOrder"`
}

type SessionSaga struct {
	SagaID string `json:"sagaId"`
	State  string `json:"state"`
}

type Summary struct {
	SessionID    string `json:"sessionId"`
	State        string `json:"state"`
	DeltaCount   int    `json:"deltaCount"`
	Participants []struct {
		Did  string `json:"did"`
		Ring int    `json:"ring"`
	} `json:"participants"`
}

type AuditHead struct {
	DeltaCount int               `json:"deltaCount"`
	MerkleRoot *string           `json:"merkleRoot"`
	Stored     int               `json:"stored"`
	Pending    []json.RawMessage `json:"pending"`
}

type TerminationResult struct {
	Commitment struct {
		SessionID       string   `json:"sessionId"`
		MerkleRoot      *string  `json:"merkleRoot"`
		DeltaCount      int      `json:"deltaCount"`
		ParticipantDids []string `json:"participantDids"`
	} `json:"commitment"`
	RetainUntil int64 `json:"retainUntil"`
}

// sagaEnds are the failure types of a saga that did not complete; its outcome is details[0].
var sagaEnds = map[string]bool{"SagaCompensated": true, "SagaEscalated": true, "SagaFailed": true}

// Refusal is a request the session refused: the rule's code, its message, and
// (for an update) the code's details (docs/CONTRACT.md, "Error codes").
type Refusal struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

// updateRefusal: a refused update fails with an ApplicationError whose type is the code.
func updateRefusal(err error) (Refusal, bool) {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		return Refusal{}, false
	}
	refusal := Refusal{Code: appErr.Type(), Message: appErr.Message()}
	if appErr.HasDetails() {
		_ = appErr.Details(&refusal.Details)
	}
	return refusal, true
}

// queryRefusal: a refused query fails with QueryFailed, whose message leads with the code.
func queryRefusal(err error) (Refusal, bool) {
	var failed *serviceerror.QueryFailed
	if !errors.As(err, &failed) {
		return Refusal{}, false
	}
	code, message, _ := strings.Cut(failed.Message, ": ")
	return Refusal{Code: code, Message: message}, true
}

// Session is one session workflow, hv-session-<sessionId>.
type Session struct {
	c          client.Client
	workflowID string
}

// update sends one update and waits for its outcome; args are none, or the one JSON argument.
func (s Session) update(ctx context.Context, name string, out any, args ...any) error {
	handle, err := s.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   s.workflowID,
		UpdateName:   name,
		Args:         args,
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return err
	}
	return handle.Get(ctx, out)
}

func (s Session) query(ctx context.Context, name string, out any, args ...any) error {
	value, err := s.c.QueryWorkflow(ctx, s.workflowID, "", name, args...)
	if err != nil {
		return err
	}
	return value.Get(out)
}

// outcome prints one line: the outcome's name and its JSON.
func outcome(name string, value any) {
	text, err := json.Marshal(value)
	if err != nil {
		fail("encode %s: %v", name, err)
	}
	fmt.Printf("%s %s\n", name, text)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "hv-go-example: "+format+"\n", args...)
	os.Exit(1)
}

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

func demoActions() []Action {
	handler := func(action, name string, reversibility string, riskWeight float64) Action {
		return Action{action, reversibility, riskWeight, "handler:" + name, "handler:" + name}
	}
	return []Action{
		handler("draft-email", "demo.draft-email", "FULL", 0),
		handler("reserve-budget", "demo.reserve-budget", "PARTIAL", 0.6),
		handler("send-email", "demo.send-email", "PARTIAL", 0),
	}
}

func main() {
	sessionID := flag.String("session", "go-"+strconv.FormatInt(time.Now().UnixMilli(), 36), "the session's id")
	flag.Parse()

	c, err := client.Dial(client.Options{
		HostPort:  envOr("TEMPORAL_ADDRESS", "127.0.0.1:7233"),
		Namespace: envOr("TEMPORAL_NAMESPACE", "default"),
		Logger:    log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
	})
	if err != nil {
		fail("connect: %v", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Start: the session workflow, on the hypervisor's task queue.
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        "hv-session-" + *sessionID,
		TaskQueue: envOr("HV_TASK_QUEUE", "agent-hypervisor"),
	}, "sessionWorkflow", map[string]any{"sessionId": *sessionID, "creatorDid": creator})
	if err != nil {
		fail("start session %s: %v", *sessionID, err)
	}
	session := Session{c, run.GetID()}
	outcome("started", map[string]string{"sessionId": *sessionID, "workflowId": run.GetID(), "runId": run.GetRunID()})

	// Join: alpha and beta declare the demo's actions.
	for _, agent := range []JoinRequest{{alpha, 0.85, demoActions()}, {beta, 0.8, demoActions()}} {
		var joined JoinResult
		if err := session.update(ctx, "join", &joined, agent); err != nil {
			fail("join %s: %v", agent.AgentDid, err)
		}
		outcome("joined", joined)
	}

	// A refused join: alpha again.
	var again JoinResult
	err = session.update(ctx, "join", &again, JoinRequest{AgentDid: alpha, SigmaRaw: 0.85})
	if refusal, ok := updateRefusal(err); ok {
		outcome("join-refused", refusal) // DUPLICATE_AGENT, details {"did": "did:mesh:alpha"}
	} else {
		fail("a second join of %s: expected a refusal, got %v", alpha, err)
	}

	var activated Summary
	if err := session.update(ctx, "activate", &activated); err != nil {
		fail("activate: %v", err)
	}
	outcome("activated", map[string]any{"state": activated.State})

	// A saga whose third step fails: the mail gateway is down on every attempt.
	var started StartSagaResult
	err = session.update(ctx, "startSaga", &started, StartSagaRequest{
		SagaID:      "launch",
		Description: "draft, reserve, send during a mail outage",
		Steps: []Step{
			{ActionID: "draft-email", AgentDid: alpha, Input: map[string]any{"to": "board@example.com"}},
			{ActionID: "reserve-budget", AgentDid: beta, Input: map[string]any{"amount": 1200}},
			{ActionID: "send-email", AgentDid: alpha, Input: map[string]any{"simulateOutage": true},
				Retry: &Retry{MaximumAttempts: 2, InitialIntervalSeconds: 1}},
		},
	})
	if err != nil {
		fail("startSaga: %v", err)
	}
	outcome("saga-started", started)

	// A saga that did not complete is a failed workflow; its compact outcome is the failure's details.
	var ended SagaOutcome
	err = c.GetWorkflow(ctx, started.WorkflowID, started.RunID).Get(ctx, &ended)
	var sagaFailure *temporal.ApplicationError
	if errors.As(err, &sagaFailure) && sagaEnds[sagaFailure.Type()] {
		if err := sagaFailure.Details(&ended); err != nil {
			fail("saga %s: its failure's details: %v", started.SagaID, err)
		}
	} else if err != nil {
		fail("saga %s: %v", started.SagaID, err)
	}
	// Its full snapshot (each step, the compensation order) is the sagaState query: a closed saga answers it.
	value, err := c.QueryWorkflow(ctx, started.WorkflowID, started.RunID, "sagaState")
	if err != nil {
		fail("saga %s: sagaState: %v", started.SagaID, err)
	}
	var snapshot SagaSnapshot
	if err := value.Get(&snapshot); err != nil {
		fail("saga %s: sagaState: %v", started.SagaID, err)
	}
	if sagaFailure != nil {
		outcome("saga-ended", map[string]any{
			"failureType":       sagaFailure.Type(),
			"state":             ended.State,
			"failedStepId":      ended.FailedStepID,
			"error":             ended.Error,
			"compensationOrder": snapshot.CompensationOrder,
		})
	} else {
		outcome("saga-ended", map[string]any{"state": snapshot.Saga.State})
	}

	// The session learns the outcome from its child a moment after the client does.
	var sagas []SessionSaga
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if err := session.query(ctx, "sagas", &sagas); err != nil {
			fail("sagas: %v", err)
		}
		if len(sagas) == 1 && sagas[0].State != "running" || time.Now().After(deadline) {
			break
		}
	}
	outcome("sagas", sagas)

	// A refused query: beta may not read a file alpha restricted to itself (a relative
	// path is in the session's namespace, /sessions/<sessionId>/).
	var written map[string]any
	if err := session.update(ctx, "vfsWrite", &written,
		map[string]any{"agentDid": alpha, "path": "notes/plan.md", "content": "launch on Monday"}); err != nil {
		fail("vfsWrite: %v", err)
	}
	if err := session.update(ctx, "vfsSetPermissions", &written,
		map[string]any{"agentDid": alpha, "path": "notes/plan.md", "allowedDids": []string{alpha}}); err != nil {
		fail("vfsSetPermissions: %v", err)
	}
	var file map[string]any
	err = session.query(ctx, "vfsFile", &file, "notes/plan.md", beta)
	if refusal, ok := queryRefusal(err); ok {
		outcome("query-refused", refusal) // PERMISSION_DENIED
	} else {
		fail("vfsFile for %s: expected a refusal, got %v", beta, err)
	}

	var summary Summary
	if err := session.query(ctx, "summary", &summary); err != nil {
		fail("summary: %v", err)
	}
	outcome("summary", summary)
	var head AuditHead
	if err := session.query(ctx, "auditHead", &head); err != nil {
		fail("auditHead: %v", err)
	}
	outcome("audit-head", map[string]any{"deltaCount": head.DeltaCount, "merkleRoot": head.MerkleRoot, "stored": head.Stored})

	// Terminate: the commitment's Merkle root is what the audit store's deltas must give.
	var terminated TerminationResult
	if err := session.update(ctx, "terminate", &terminated); err != nil {
		fail("terminate: %v", err)
	}
	outcome("terminated", terminated.Commitment)

	// An ended session is a closed workflow: Temporal itself answers NotFound, "already completed".
	err = session.update(ctx, "join", &again, JoinRequest{AgentDid: "did:mesh:gamma", SigmaRaw: 0.7})
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		outcome("closed", map[string]string{"grpc": "NotFound", "message": notFound.Message})
	} else {
		fail("a join after terminate: expected NotFound, got %v", err)
	}
}
