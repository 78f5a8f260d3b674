package archive

import (
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestVerify(t *testing.T) {
	at := time.Now()
	tests := []struct {
		name  string
		setup func(t *testing.T, a *Archive)
		want  []string // substrings of the problems, in order; none = healthy
	}{
		{"healthy seeded archive", seedArchive, nil},
		{"healthy with collisions and a blank schema", func(t *testing.T, a *Archive) {
			other := testEvent(1, "", at)
			other.EventID = "other"
			mustAppend(t, a, TopicBatch{Topic: topicA, Events: []Event{testEvent(1, "s", at), other},
				Schemas: map[string]string{"s": "{}"}})
		}, nil},
		{"missing schema", func(t *testing.T, a *Archive) {
			mustAppend(t, a, TopicBatch{Topic: topicA, Events: []Event{testEvent(1, "gone", at), testEvent(2, "gone", at)}})
		}, []string{"schema gone is not stored"}},
		{"mark behind the last event", func(t *testing.T, a *Archive) {
			mustAppend(t, a, TopicBatch{Topic: topicA, Events: []Event{testEvent(5, "s", at)}, LatestReplayID: rid10(4),
				Schemas: map[string]string{"s": "{}"}})
		}, []string{"behind the last event"}},
		{"counter disagrees with the events", func(t *testing.T, a *Archive) {
			mustAppend(t, a, TopicBatch{Topic: topicA, Events: []Event{testEvent(1, "s", at)}, Schemas: map[string]string{"s": "{}"}})
			ev := testEvent(2, "s", at)
			if err := a.db.Update(func(tx *bolt.Tx) error {
				return topicBucket(tx, topicA).Bucket(bucketEvents).Put(ev.ReplayID, EncodeEnvelope(&ev))
			}); err != nil {
				t.Fatal(err)
			}
		}, []string{"state counts 1 events, the bucket holds 2", "behind the last event"}},
		{"time index entry without its event", func(t *testing.T, a *Archive) {
			mustAppend(t, a, TopicBatch{Topic: topicA, Events: []Event{testEvent(1, "s", at)}, Schemas: map[string]string{"s": "{}"}})
			if err := a.db.Update(func(tx *bolt.Tx) error {
				return topicBucket(tx, topicA).Bucket(bucketTimes).Put(timeKey(at.Add(time.Hour)), rid10(77))
			}); err != nil {
				t.Fatal(err)
			}
		}, []string{"points at no event"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTest(t)
			tt.setup(t, a)
			problems, err := a.Verify(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(problems) != len(tt.want) {
				t.Fatalf("problems %v, want %d", problems, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(problems[i].String(), w) {
					t.Fatalf("problem %d = %q, want it to mention %q", i, problems[i], w)
				}
			}
		})
	}
}

func TestVerifyCancelled(t *testing.T) {
	a := newTest(t)
	fillTopic(t, a, topicA, 3, 1000)
	ctx, cancel := contextWithCancelNow(t)
	defer cancel()
	if _, err := a.Verify(ctx); err == nil {
		t.Fatal("Verify with a cancelled context succeeded")
	}
}
