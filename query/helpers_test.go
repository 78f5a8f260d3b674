package query

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/sfarchive/sfarchive/archive"
)

// Schema IDs used by the tests (the real sample's ID for the account schema).
const (
	accountSchemaID  = "vjfSL_rX8hSnqyn0Yla8Zw"
	accountBSchemaID = "accountB_addsField00000"
	orderSchemaID    = "_CADE3qaegX3ECEW0rlbYA"
	bigCommitNumber  = int64(1698100138468892700)
)

func readTestdata(tb testing.TB, name string) string {
	tb.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func mustSchema(tb testing.TB, id, js string) *Schema {
	tb.Helper()
	s, err := ParseSchema(id, js)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// accountBJSON is AccountChangeEvent with one field added at the end (schema B of case 3).
func accountBJSON(tb testing.TB) string {
	js := readTestdata(tb, "AccountChangeEvent.avsc")
	i := bytes.LastIndexByte([]byte(js), ']')
	return js[:i] + `,{"name":"Tier__c","type":["null","string"],"default":null}` + js[i:]
}

func marshal(tb testing.TB, js string, v map[string]any) []byte {
	tb.Helper()
	s, err := avro.ParseWithCache(js, "", &avro.SchemaCache{})
	if err != nil {
		tb.Fatal(err)
	}
	b, err := avro.Marshal(s, v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func u(typ string, v any) map[string]any { return map[string]any{typ: v} }

const addressType = "com.sforce.eventbus.Address"

// accountEvent is a seeded, realistic AccountChangeEvent value (about 1 KiB encoded for UPDATE with
// generous fields) and the bitmap expansion it must give.
type accountEvent struct {
	values  map[string]any
	changed []string
}

var (
	cities    = []string{"San Francisco", "Paris", "München", "Zürich", "New York", "São Paulo", "東京"}
	streets   = []string{"1 Market Street", "12 Main Street", "Rue de Rivoli 99", "Bahnhofstrasse 1, \"Haus B\""}
	changeTys = []string{"CREATE", "UPDATE", "UPDATE", "UPDATE", "DELETE", "UNDELETE"}
)

func genAccount(rng *rand.Rand, i int, changeType string) accountEvent {
	ts := int64(1700000000000) + int64(i)*60_000
	id := fmt.Sprintf("0014H00002L%04dQAV", i%10000)
	hdr := map[string]any{
		"entityName": "Account", "recordIds": []any{id}, "changeType": changeType,
		"changeOrigin":   "com/salesforce/api/soap/62.0;client=SfdcInternalAPI/",
		"transactionKey": fmt.Sprintf("0000c8a0-6766-3414-949f-%012x", rng.Uint64()>>16), "sequenceNumber": int32(1),
		"commitTimestamp": ts, "commitNumber": bigCommitNumber + int64(i), "commitUser": "00558000000yFyDAAU",
		"nulledFields": []any{}, "diffFields": []any{}, "changedFields": []any{},
	}
	v := map[string]any{"ChangeEventHeader": hdr}
	addr := func() map[string]any {
		return u(addressType, map[string]any{
			"Street": u("string", streets[rng.IntN(len(streets))]), "City": u("string", cities[rng.IntN(len(cities))]),
			"State": u("string", "CA"), "PostalCode": u("string", fmt.Sprintf("%05d", rng.IntN(99999))),
			"Country": u("string", "United States"), "Latitude": u("double", 37.7749+rng.Float64()),
			"Longitude": u("double", -122.4194+rng.Float64()),
		})
	}
	var changed []string
	switch changeType {
	case "CREATE":
		v["Name"] = u("string", fmt.Sprintf("Acme %d GmbH & Co. <KG>", i))
		v["BillingAddress"] = addr()
		v["ShippingAddress"] = addr()
		v["Phone"] = u("string", "+1 415 555 0100")
		v["Website"] = u("string", "https://example.com/acme")
		v["Industry"] = u("string", "Technology")
		v["AnnualRevenue"] = u("double", float64(rng.IntN(1e9))+0.25)
		v["NumberOfEmployees"] = u("int", int32(rng.IntN(100000)))
		v["Description"] = u("string", "Long description of the account.\nSecond line with a tab\tand unicode: ✓ ü 東京. "+
			"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. "+
			"Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat.")
		v["OwnerId"] = u("string", "00558000000yFyDAAU")
		v["CreatedDate"] = u("long", ts)
		v["CreatedById"] = u("string", "00558000000yFyDAAU")
		v["LastModifiedDate"] = u("long", ts)
		v["LastModifiedById"] = u("string", "00558000000yFyDAAU")
		v["Match_Billing_Address__c"] = u("boolean", rng.IntN(2) == 1)
		v["Potential_Value__c"] = u("double", 1e21*rng.Float64())
	case "UPDATE":
		// LastModifiedDate (22) + Industry (11) + Description (16) top-level, Street+City nested.
		v["LastModifiedDate"] = u("long", ts)
		v["Industry"] = u("string", "Banking")
		v["Description"] = u("string", "Updated after the call with the customer; see the notes attached to the opportunity. "+
			"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. "+
			"Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. "+
			"Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. "+
			"Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id est laborum.")
		v["BillingAddress"] = u(addressType, map[string]any{"Street": u("string", streets[rng.IntN(len(streets))]), "City": u("string", cities[rng.IntN(len(cities))])})
		hdr["changedFields"] = []any{"0x410800", "4-0x03"}
		hdr["nulledFields"] = []any{"0x8000"} // TickerSymbol (15) nulled
		changed = []string{"Industry", "Description", "LastModifiedDate", "BillingAddress.Street", "BillingAddress.City"}
	}
	return accountEvent{values: v, changed: changed}
}

// memSource is an in-memory Source for unit tests of filters and formats (the golden tests use a real
// archive file).
type memSource struct {
	topics  map[string][]archive.Event
	schemas map[string]string
	gaps    []archive.Gap
	badEnv  map[string]bool // replay IDs (hex) whose envelope is "damaged"
}

func newMemSource() *memSource {
	return &memSource{topics: map[string][]archive.Event{}, schemas: map[string]string{}, badEnv: map[string]bool{}}
}

func replayID(n uint64) []byte {
	b := make([]byte, 10)
	binary.BigEndian.PutUint64(b, n)
	return b
}

func (m *memSource) add(topic, schemaID string, payload []byte) {
	n := uint64(len(m.topics[topic]) + 1)
	m.topics[topic] = append(m.topics[topic], archive.Event{
		ReplayID: replayID(n), EventID: fmt.Sprintf("ev-%s-%d", topic, n), SchemaID: schemaID, Payload: payload,
		ReceivedAt: time.Date(2024, 3, 1, 12, 0, 0, int(n)*1000, time.UTC), Seq: n,
	})
}

func (m *memSource) Topics() ([]string, error) {
	var ts []string
	for t := range m.topics {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts, nil
}

func (m *memSource) Schema(id string) (string, error) {
	js, ok := m.schemas[id]
	if !ok {
		return "", fmt.Errorf("schema %s: %w", id, archive.ErrSchemaNotFound)
	}
	return js, nil
}

func (m *memSource) Gaps() ([]archive.Gap, error) { return m.gaps, nil }

func (m *memSource) Scan(ctx context.Context, topic string, opts archive.ScanOptions, fn func(ev *archive.Event) error) error {
	evs, ok := m.topics[topic]
	if !ok {
		return fmt.Errorf("topic %s: %w", topic, archive.ErrTopicNotFound)
	}
	evs = slices.Clone(evs)
	if opts.Reverse {
		slices.Reverse(evs)
	}
	for i := range evs {
		ev := &evs[i]
		if opts.AfterReplayID != nil && bytes.Compare(ev.ReplayID, opts.AfterReplayID) <= 0 ||
			opts.BeforeReplayID != nil && bytes.Compare(ev.ReplayID, opts.BeforeReplayID) >= 0 ||
			!opts.ReceivedSince.IsZero() && ev.ReceivedAt.Before(opts.ReceivedSince) ||
			!opts.ReceivedUntil.IsZero() && !ev.ReceivedAt.Before(opts.ReceivedUntil) {
			continue
		}
		if m.badEnv[fmt.Sprintf("%x", ev.ReplayID)] {
			err := &archive.EnvelopeError{Topic: topic, ReplayID: ev.ReplayID, Err: fmt.Errorf("bad envelope version")}
			if opts.OnBadEnvelope == nil {
				return err
			}
			if err := opts.OnBadEnvelope(topic, ev.ReplayID, err); err != nil {
				return err
			}
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	return nil
}

// fixtureSource holds the account topic (seeded CREATE/UPDATE/DELETE), the real sample, order events and a
// GAP_OVERFLOW event.
func fixtureSource(tb testing.TB) *memSource {
	tb.Helper()
	m := newMemSource()
	acct := readTestdata(tb, "AccountChangeEvent.avsc")
	m.schemas[accountSchemaID] = acct
	m.schemas[orderSchemaID] = readTestdata(tb, "Order_Event__e.avsc")
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 6 {
		ev := genAccount(rng, i, changeTys[i%len(changeTys)])
		m.add("/data/AccountChangeEvent", accountSchemaID, marshal(tb, acct, ev.values))
	}
	m.add("/data/AccountChangeEvent", accountSchemaID, samplePayload(tb))
	m.add("/data/AccountChangeEvent", accountSchemaID, marshal(tb, acct, gapOverflow()))
	order := readTestdata(tb, "Order_Event__e.avsc")
	for i := range 3 {
		m.add("/event/Order_Event__e", orderSchemaID, marshal(tb, order, map[string]any{
			"CreatedDate": int64(1700000000000 + i*1000), "CreatedById": "005xx000001X8Uz",
			"Order_Number__c": u("string", fmt.Sprintf("ORD-%04d", i)), "City__c": u("string", cities[i]),
			"Amount__c": u("double", 1234.5+float64(i)),
		}))
	}
	return m
}

func gapOverflow() map[string]any {
	return map[string]any{"ChangeEventHeader": map[string]any{
		"entityName": "Account", "recordIds": []any{}, "changeType": "GAP_OVERFLOW", "changeOrigin": "",
		"transactionKey": "", "sequenceNumber": int32(0), "commitTimestamp": int64(1700000100000), "commitNumber": int64(0),
		"commitUser": "", "nulledFields": []any{}, "diffFields": []any{}, "changedFields": []any{},
	}}
}
