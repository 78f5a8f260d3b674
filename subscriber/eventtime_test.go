package subscriber

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sfarchive/sfarchive/emulator"
)

func TestEventTimeFromPayload(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "shared", "pubsub", "samples", "AccountChangeEvent-update-2022.json"))
	if err != nil {
		t.Fatalf("read the real sample (shared/ must sit beside the repository): %v", err)
	}
	var sample struct {
		ConsumerEvent struct {
			Event struct {
				PayloadHex string `json:"payload_hex"`
			} `json:"event"`
		} `json:"consumer_event"`
	}
	if err := json.Unmarshal(raw, &sample); err != nil {
		t.Fatal(err)
	}
	cdc, err := hex.DecodeString(sample.ConsumerEvent.Event.PayloadHex)
	if err != nil {
		t.Fatal(err)
	}

	orderJSON, err := emulator.BuiltinSchema("Order_Event__e.avsc")
	if err != nil {
		t.Fatal(err)
	}
	orderSchema, err := emulator.ParseSchema(orderJSON)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 3, 14, 15, 9, 26, 535e6, time.UTC)
	order, err := emulator.Encode(orderSchema, map[string]any{"CreatedDate": created.UnixMilli(), "CreatedById": "005xx0000012345AAA",
		"Order_Number__c": "ORD-1", "City__c": "Lyon", "Amount__c": 12.5})
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name, topic string
		payload     []byte
		want        time.Time
		ok          bool
	}{
		{"real change event: commitTimestamp", "/data/AccountChangeEvent", cdc, time.UnixMilli(1659440165000), true},
		{"platform event: CreatedDate", "/event/Order_Event__e", order, created, true},
		{"truncated change event", "/data/AccountChangeEvent", cdc[:20], time.Time{}, false},
		{"empty payload", "/event/Order_Event__e", nil, time.Time{}, false},
		{"garbage", "/data/AccountChangeEvent", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, time.Time{}, false},
		{"implausible time", "/event/Order_Event__e", []byte{0x02}, time.Time{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := eventTime(tc.topic, tc.payload)
			if ok != tc.ok || !got.Equal(tc.want) {
				t.Errorf("eventTime = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func FuzzEventTime(f *testing.F) {
	f.Add("/data/AccountChangeEvent", []byte{0x0e, 'A', 'c', 'c', 'o', 'u', 'n', 't'})
	f.Add("/event/Order_Event__e", []byte{0x80, 0x80, 0x80})
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		eventTime(topic, payload) // must never panic or hang
	})
}
