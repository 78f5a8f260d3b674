package query

import (
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/sfarchive/sfarchive/archive"
)

// Names the --where environment adds beside the event's own fields.
const (
	envTopic      = "topic"
	envReplayID   = "replay_id"
	envEventID    = "event_id"
	envSchemaID   = "schema_id"
	envReceivedAt = "received_at"
	envChanged    = "changed_fields"
	envNulled     = "nulled_fields"
	envDiff       = "diff_fields"
)

var envExtras = []string{envTopic, envReplayID, envEventID, envSchemaID, envReceivedAt, envChanged, envNulled, envDiff}

// whereFunctions are the functions the package adds to expr's builtins.
var whereFunctions = map[string]bool{"ms": true}

// whereExpr is a compiled --where expression.
type whereExpr struct {
	src         string
	prog        *vm.Program
	vm          vm.VM
	idents      map[string]bool // identifiers the expression refers to
	usesBitmaps bool
	usesExtras  bool
	seen        map[string]bool // field names present in the schemas seen so far
	errs        int
	firstErr    error
}

type identCollector struct{ names, declared map[string]bool }

func (c *identCollector) Visit(n *ast.Node) {
	switch x := (*n).(type) {
	case *ast.IdentifierNode:
		c.names[x.Value] = true
	case *ast.VariableDeclaratorNode:
		c.declared[x.Name] = true
	}
}

// compileWhere compiles an expression once. Undefined names evaluate to nil, because a field can exist in one
// schema version and not another; names no scanned event has are reported as warnings after the run.
func compileWhere(src string) (*whereExpr, error) {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadExpression, err)
	}
	c := &identCollector{names: map[string]bool{}, declared: map[string]bool{}}
	ast.Walk(&tree.Node, c)
	for d := range c.declared {
		delete(c.names, d)
	}
	tc := &timeConstChecker{}
	ast.Walk(&tree.Node, tc)
	if tc.err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadExpression, tc.err)
	}
	prog, err := expr.Compile(src,
		expr.AllowUndefinedVariables(),
		expr.AsBool(),
		expr.Function("ms", msFunc, new(func(string) int64)),
		expr.Patch(nilSafeMembers{}),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadExpression, err)
	}
	w := &whereExpr{src: src, prog: prog, idents: c.names, seen: map[string]bool{}}
	w.usesBitmaps = c.names[envChanged] || c.names[envNulled] || c.names[envDiff]
	for _, e := range envExtras {
		w.usesExtras = w.usesExtras || c.names[e]
	}
	return w, nil
}

// nilSafeMembers makes every member access optional, as if written with expr's ?. operator: a.b is nil when a
// is nil (a null record, or a name missing from the event's schema) instead of a run-time error. It rewrites
// the tree the way the parser builds a?.b?.c: each member node is Optional and the outermost one of a chain is
// wrapped in a single ChainNode (the compiler emits the nil checks only inside a chain). Method calls are left
// as they are (the environment is a map, so there are none).
type nilSafeMembers struct{}

func (nilSafeMembers) Visit(n *ast.Node) {
	m, ok := (*n).(*ast.MemberNode)
	if !ok || m.Method {
		return
	}
	m.Optional = true
	// The walk is post-order: an inner member was wrapped already; fold it into this member's chain.
	if ch, ok := m.Node.(*ast.ChainNode); ok {
		if _, inner := ch.Node.(*ast.MemberNode); inner {
			m.Node = ch.Node
		}
	}
	ch := &ast.ChainNode{Node: m}
	ch.SetLocation(m.Location())
	*n = ch
}

// timeConstChecker finds ms() and date() calls whose arguments are all constant strings and evaluates them,
// so that a time that does not parse is a compile error rather than a run-time error on every event.
type timeConstChecker struct{ err error }

func (c *timeConstChecker) Visit(n *ast.Node) {
	if c.err != nil {
		return
	}
	var name string
	var args []ast.Node
	switch x := (*n).(type) {
	case *ast.CallNode:
		if id, ok := x.Callee.(*ast.IdentifierNode); ok {
			name, args = id.Value, x.Arguments
		}
	case *ast.BuiltinNode:
		name, args = x.Name, x.Arguments
	}
	if (name != "ms" && name != "date") || len(args) == 0 {
		return
	}
	strs := make([]any, len(args))
	for i, a := range args {
		s, ok := a.(*ast.StringNode)
		if !ok {
			return
		}
		strs[i] = s.Value
	}
	switch name {
	case "ms":
		if len(strs) == 1 {
			if _, err := msFunc(strs...); err != nil {
				c.err = err
			}
		}
	case "date":
		if i, ok := builtin.Index["date"]; ok && len(strs) <= 3 {
			if _, err := builtin.Builtins[i].Func(strs...); err != nil {
				c.err = fmt.Errorf("date(%s): %v", quoteArgs(strs), err)
			}
		}
	}
}

func quoteArgs(args []any) string {
	var b []byte
	for i, a := range args {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = fmt.Appendf(b, "%q", a)
	}
	return string(b)
}

// msFunc is ms("2024-03-01T10:00:00Z") or ms("2024-03-01"): a time as epoch milliseconds, to compare with
// commitTimestamp, CreatedDate and other epoch-millisecond fields.
func msFunc(params ...any) (any, error) {
	s, ok := params[0].(string)
	if !ok {
		return nil, fmt.Errorf("ms() wants a string, got %T", params[0])
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixMilli(), nil
		}
	}
	return nil, fmt.Errorf("ms(%q): not an RFC 3339 time or a YYYY-MM-DD date", s)
}

func (w *whereExpr) noteSchema(s *Schema) {
	for _, n := range s.topNames {
		w.seen[n] = true
	}
	if s.cdc {
		for _, f := range s.header.fields {
			w.seen[f.name] = true
		}
	}
}

// eval runs the expression with vals (the decoded top-level fields it needs) as its environment, plus the
// ChangeEventHeader fields at the top level (where no event field has the name) and the extras.
func (w *whereExpr) eval(topic string, ev *archive.Event, s *Schema, vals, header map[string]any, bm BitmapResult) (bool, error) {
	env := vals
	for k, v := range header {
		if _, clash := env[k]; !clash && w.idents[k] && !slices.Contains(s.topNames, k) {
			env[k] = v
		}
	}
	if w.usesExtras {
		env[envTopic] = topic
		env[envReplayID] = hex.EncodeToString(ev.ReplayID)
		env[envEventID] = ev.EventID
		env[envSchemaID] = ev.SchemaID
		env[envReceivedAt] = ev.ReceivedAt.UTC()
		if w.usesBitmaps && s.cdc {
			env[envChanged] = stringsToAny(bm.Changed)
			env[envNulled] = stringsToAny(bm.Nulled)
			env[envDiff] = stringsToAny(bm.Diff)
		}
	}
	out, err := w.vm.Run(w.prog, env)
	if err != nil {
		w.errs++
		if w.firstErr == nil {
			w.firstErr = fmt.Errorf("replay %s: %w", hex.EncodeToString(ev.ReplayID), err)
		}
		return false, nil
	}
	b, _ := out.(bool)
	return b, nil
}

func stringsToAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func (f *filter) warnings() []string {
	w := f.where
	if w == nil {
		return nil
	}
	var out []string
	var unknown []string
	for name := range w.idents {
		if !w.seen[name] && !slices.Contains(envExtras, name) && !whereFunctions[name] {
			unknown = append(unknown, name)
		}
	}
	sort.Strings(unknown)
	if len(unknown) > 0 && len(w.seen) > 0 {
		out = append(out, fmt.Sprintf("--where refers to %v, which no scanned event has (names are case-sensitive)", unknown))
	}
	if w.errs > 0 {
		out = append(out, fmt.Sprintf("--where failed on %d events, which were left out; first: %v", w.errs, w.firstErr))
	}
	return out
}

// WhereHelp documents the --where syntax for the CLI's --help and the README.
const WhereHelp = `--where takes an expression (expr-lang, https://expr-lang.org) that must be true for an event to be kept.
Names: the event's top-level fields (compound fields as records: BillingAddress.City); the ChangeEventHeader
fields also at the top level (changeType, entityName, recordIds, commitTimestamp, commitNumber, commitUser, …);
topic, replay_id (hex), event_id, schema_id, received_at (a time: compare with date("…")); changed_fields,
nulled_fields, diff_fields (expanded names). Long fields and integer literals are exact 64-bit integers.
Epoch-millisecond fields are numbers: ms("2024-03-01") or ms("2024-03-01T10:00:00Z") converts a time.
A field missing from an event's schema is nil, and so is a field of a null record (BillingAddress.City when
BillingAddress is null); an expression that fails on an event leaves it out.
Examples:
  commitNumber == 1698100138468892700
  changeType == "UPDATE" && "Industry" in changed_fields
  BillingAddress.City == "Paris" || BillingAddress.Country in ["FR", "France"]
  Amount__c >= 1000 && Order_Number__c startsWith "ORD-"
  LastModifiedDate >= ms("2024-03-01") && commitUser == "005xx000001X8Uz"
  any(recordIds, # startsWith "001") && received_at > date("2024-03-01T00:00:00Z")`
