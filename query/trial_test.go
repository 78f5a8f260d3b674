package query

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// Regression tests for the bugs found in the user trial.

// addressSource holds account change events whose BillingAddress is Paris, Lyon, Berlin, null, or a record with
// null subfields, plus a GAP event (no address) and an order platform event (no BillingAddress in its schema).
func addressSource(tb testing.TB) *memSource {
	tb.Helper()
	m := newMemSource()
	acct := readTestdata(tb, "AccountChangeEvent.avsc")
	order := readTestdata(tb, "Order_Event__e.avsc")
	m.schemas[accountSchemaID] = acct
	m.schemas[orderSchemaID] = order
	addr := func(city, country any) map[string]any {
		a := map[string]any{}
		if city != nil {
			a["City"] = u("string", city)
		}
		if country != nil {
			a["Country"] = u("string", country)
		}
		return u(addressType, a)
	}
	for i, a := range []map[string]any{
		addr("Paris", "France"),
		addr("Lyon", "FR"),
		addr("Berlin", "Germany"),
		nil,            // BillingAddress null
		addr(nil, nil), // a record whose subfields are null
	} {
		hdr := map[string]any{
			"entityName": "Account", "recordIds": []any{"0014H00002LbR7QQAV"}, "changeType": "UPDATE", "changeOrigin": "",
			"transactionKey": "", "sequenceNumber": int32(1), "commitTimestamp": int64(1700000000000 + i),
			"commitNumber": bigCommitNumber + int64(i), "commitUser": "005xx000001X8Uz",
			"nulledFields": []any{}, "diffFields": []any{}, "changedFields": []any{},
		}
		v := map[string]any{"ChangeEventHeader": hdr}
		if a != nil {
			v["BillingAddress"] = a
		}
		m.add("/data/AccountChangeEvent", accountSchemaID, marshal(tb, acct, v))
	}
	m.add("/data/AccountChangeEvent", accountSchemaID, marshal(tb, acct, gapOverflow()))
	m.add("/event/Order_Event__e", orderSchemaID, marshal(tb, order, map[string]any{
		"CreatedDate": int64(1700000000000), "CreatedById": "005xx000001X8Uz",
		"Order_Number__c": u("string", "ORD-0001"), "City__c": u("string", "Paris"), "Amount__c": u("double", 10.0),
	}))
	return m
}

// Bug 1: member access on a null record (or a field missing from the schema) is nil, not a run-time error.
func TestWhereNullRecordMemberAccess(t *testing.T) {
	src := addressSource(t)
	for _, tc := range []struct {
		expr string
		n    int
	}{
		{`BillingAddress.City == "Paris" || BillingAddress.City == "Lyon"`, 2}, // README
		{`BillingAddress.City != "Paris"`, 6},                                  // every event but the Paris one
		{`BillingAddress.Country in ["FR","France"]`, 2},
		{`BillingAddress.City == "Paris" || BillingAddress.Country in ["FR", "France"]`, 2}, // WhereHelp, doc.go
		{`BillingAddress.City == nil`, 4},
		{`BillingAddress != nil && BillingAddress.City == nil`, 1},
		{`BillingAddress?.City == "Berlin"`, 1}, // explicit ?. still works
		{`(BillingAddress.City ?? "none") == "none"`, 4},
		{`NoSuch.Deeper.Still == nil`, 7},
		{`ChangeEventHeader.commitNumber == 1698100138468892701`, 1}, // exact int64 through member access
		{`ChangeEventHeader.commitNumber == 1698100138468892700 + 1`, 1},
		{`commitNumber == 1698100138468892702`, 1},
		{`ChangeEventHeader.recordIds[0] startsWith "001"`, 5},
		{`BillingAddress.City in ["Paris", "Berlin"] && any(recordIds, # startsWith "001")`, 2},
	} {
		out, res := runQuery(t, src, Options{Where: tc.expr})
		if got := len(parseLines(t, out)); got != tc.n {
			t.Errorf("--where %s: %d records, want %d (result %+v)", tc.expr, got, tc.n, res)
		}
		if tc.expr == `ChangeEventHeader.recordIds[0] startsWith "001"` {
			continue // the GAP event has no record IDs: index out of range is still an error
		}
		if res.WhereErrors != 0 {
			t.Errorf("--where %s: %d where errors: %q", tc.expr, res.WhereErrors, res.Warnings)
		}
		for _, w := range res.Warnings {
			if strings.Contains(w, "failed on") {
				t.Errorf("--where %s: warning %s", tc.expr, w)
			}
		}
	}
}

// Every WhereHelp example that touches a record's field is nil-safe on the fixture too.
func TestWhereHelpExamplesNilSafe(t *testing.T) {
	src := addressSource(t)
	for _, line := range strings.Split(WhereHelp, "\n") {
		ex, ok := strings.CutPrefix(line, "  ")
		if !ok || !strings.Contains(ex, "BillingAddress.") {
			continue
		}
		_, res := runQuery(t, src, Options{Where: ex})
		if res.WhereErrors != 0 {
			t.Errorf("%s: %d where errors: %q", ex, res.WhereErrors, res.Warnings)
		}
	}
}

// Bug 2: a negative duration would mean the future.
func TestParseTimeBoundRejectsNegativeDuration(t *testing.T) {
	now := time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC)
	for _, bad := range []string{"-5h", "-90m", "-7d", " -1h30m "} {
		_, err := ParseTimeBound(bad, now)
		if !errors.Is(err, ErrBadOption) || !strings.Contains(err.Error(), "ago") {
			t.Errorf("ParseTimeBound(%q) err = %v, want ErrBadOption explaining a duration is how long ago", bad, err)
		}
	}
	if got, err := ParseTimeBound("+5h", now); err != nil || !got.Equal(now.Add(-5*time.Hour)) {
		t.Errorf("ParseTimeBound(+5h) = %v, %v", got, err)
	}
}

// Bug 3: change types ignore case, globs too.
func TestChangeTypesIgnoreCase(t *testing.T) {
	src := fixtureSource(t)
	for _, tc := range []struct {
		types []string
		n     int
	}{
		{[]string{"update"}, 4},
		{[]string{"Update"}, 4},
		{[]string{"UPDATE"}, 4},
		{[]string{"gap_*"}, 1},
		{[]string{"Gap_Overflow"}, 1},
		{[]string{"create", "delete"}, 2},
		{[]string{"[cd]reate"}, 1},
	} {
		out, _ := runQuery(t, src, Options{ChangeTypes: tc.types})
		if got := len(parseLines(t, out)); got != tc.n {
			t.Errorf("change types %q: %d records, want %d", tc.types, got, tc.n)
		}
	}
}

// Bug 4: a --fields name no scanned schema has is reported.
func TestFieldsUnknownWarns(t *testing.T) {
	src := fixtureSource(t)
	for _, f := range []Format{FormatJSONL, FormatCSV, FormatTable, FormatJSON} {
		_, res := runQuery(t, src, Options{Format: f, Fields: []string{"replay_id", "nosuch", "BillingAddress.City", "BillingAddress.Nope", "changeType", "event.Name"}})
		var got string
		for _, w := range res.Warnings {
			if strings.Contains(w, "--fields") {
				got = w
			}
		}
		if !strings.Contains(got, "nosuch") || !strings.Contains(got, "BillingAddress.Nope") {
			t.Errorf("%s: warnings %q, want one naming nosuch and BillingAddress.Nope", f, res.Warnings)
		}
		for _, known := range []string{"replay_id", "BillingAddress.City", "changeType", "event.Name"} {
			if strings.Contains(got, known+" ") || strings.Contains(got, known+"]") {
				t.Errorf("%s: known field %s reported: %s", f, known, got)
			}
		}
	}
	// Fields known in some scanned schema (Amount__c only in the order events) are not reported.
	_, res := runQuery(t, src, Options{Fields: []string{"Amount__c", "Name", "topic", "bitmap_errors"}})
	for _, w := range res.Warnings {
		if strings.Contains(w, "--fields") {
			t.Errorf("unexpected warning %s", w)
		}
	}
}

// Bug 5: a constant argument of ms() or date() that does not parse fails at compile time.
func TestWhereBadConstantTime(t *testing.T) {
	src := fixtureSource(t)
	for _, bad := range []string{
		`ms("garbage") > 0`,
		`LastModifiedDate >= ms("2024-13-01")`,
		`received_at > date("garbage")`,
		`received_at > date("2024-03-01", "2006/01/02")`,
		`any(recordIds, ms("x") > 0)`,
	} {
		_, err := Run(context.Background(), src, Options{Where: bad}, io.Discard)
		if !errors.Is(err, ErrBadExpression) {
			t.Errorf("--where %s: err = %v, want ErrBadExpression", bad, err)
			continue
		}
		if !strings.Contains(err.Error(), "garbage") && !strings.Contains(err.Error(), "2024-") && !strings.Contains(err.Error(), `"x"`) {
			t.Errorf("--where %s: error %v does not name the argument", bad, err)
		}
	}
	for _, good := range []string{
		`ms("2024-03-01") > 0`, `ms("2024-03-01T10:00:00Z") > 0`, `ms("2024-03-01T10:00:00") > 0`,
		`received_at > date("2024-03-01")`, `received_at > date("2024/03/01", "2006/01/02")`,
		`received_at > date("2024-03-01T00:00:00Z")`, `ms(Order_Number__c ?? "2024-03-01") > 0 || true`,
	} {
		if _, err := Run(context.Background(), src, Options{Where: good}, io.Discard); err != nil {
			t.Errorf("--where %s: %v", good, err)
		}
	}
}
