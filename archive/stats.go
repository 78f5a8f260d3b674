package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SchemaUse is how a topic used one schema ID: maintained on append, so reading it costs no scan.
type SchemaUse struct {
	SchemaID                    string // "" for events that arrived with a blank schema ID
	Count                       uint64
	FirstReplayID, LastReplayID []byte
	FirstReceived, LastReceived time.Time
}

// TopicStats summarises one topic from its state bucket (no event scan).
type TopicStats struct {
	Topic                                                   string
	Events, Duplicates, Collisions, OutOfOrder, BlankSchema uint64
	FirstReplayID, LastReplayID, Mark                       []byte // lowest and highest replay ID stored; the mark
	FirstReceived, LastReceived                             time.Time
	Schemas                                                 []SchemaUse // by schema ID
}

// Stats summarises the archive.
type Stats struct {
	Path               string
	FileSize           int64
	Format             int
	CreatedAt          time.Time
	OrgID, InstanceURL string
	Topics             []TopicStats // sorted by topic
	Schemas            int          // schemas stored
	Gaps               int          // gap records
}

// Stats reads the archive's summary: meta, per-topic counters and schema use, counts of schemas and gaps. It reads
// only state records, so it is cheap on any archive size.
func (a *Archive) Stats() (Stats, error) {
	s := Stats{Path: a.path}
	if fi, err := os.Stat(a.path); err == nil {
		s.FileSize = fi.Size()
	}
	err := a.view(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		s.Format, _ = strconv.Atoi(string(meta.Get(metaFormat)))
		s.CreatedAt, _ = time.Parse(time.RFC3339Nano, string(meta.Get(metaCreatedAt)))
		s.OrgID, s.InstanceURL = string(meta.Get(metaOrgID)), string(meta.Get(metaInstanceURL))
		s.Schemas = tx.Bucket(bucketSchemas).Stats().KeyN
		s.Gaps = tx.Bucket(bucketGaps).Stats().KeyN
		return tx.Bucket(bucketTopics).ForEachBucket(func(name []byte) error {
			ts, err := topicStats(tx.Bucket(bucketTopics).Bucket(name), string(name))
			if err != nil {
				return fmt.Errorf("topic %s: %w", name, err)
			}
			s.Topics = append(s.Topics, ts)
			return nil
		})
	}, nil)
	if err != nil {
		return Stats{}, fmt.Errorf("stats of %s: %w", a.path, err)
	}
	return s, nil
}

func topicStats(t *bolt.Bucket, name string) (TopicStats, error) {
	st, err := loadState(t.Bucket(bucketState))
	if err != nil {
		return TopicStats{}, err
	}
	ts := TopicStats{Topic: name, Events: st.events, Duplicates: st.duplicates, Collisions: st.collisions,
		OutOfOrder: st.outOfOrder, BlankSchema: st.blankSchema, FirstReplayID: st.minReplay,
		LastReplayID: st.maxReplay, Mark: st.hwm}
	if st.hasReceived {
		ts.FirstReceived, ts.LastReceived = nanoTime(st.firstReceived), nanoTime(st.lastReceived)
	}
	if used := t.Bucket(bucketSchemasUsed); used != nil {
		err := used.ForEach(func(k, v []byte) error {
			u, err := decodeSchemaUse(v)
			if err != nil {
				return fmt.Errorf("schema use %q: %w", k, err)
			}
			ts.Schemas = append(ts.Schemas, u.toPublic(schemaIDFromUseKey(k)))
			return nil
		})
		if err != nil {
			return TopicStats{}, err
		}
	}
	return ts, nil
}

// Problem is one thing Verify found wrong. Topic and ReplayID are set when it concerns one topic or event.
type Problem struct {
	Topic    string
	ReplayID []byte
	What     string
}

func (p Problem) String() string {
	switch {
	case p.ReplayID != nil:
		return fmt.Sprintf("%s %x: %s", p.Topic, p.ReplayID, p.What)
	case p.Topic != "":
		return p.Topic + ": " + p.What
	}
	return p.What
}

// Verify checks the archive: that the file's page tree is sound (every page inside the file and reached once,
// elements inside their pages), bbolt's consistency check (every page reachable once, keys ordered), every
// envelope decodes, every schema an event or schema-use record references is stored, every topic's counters agree
// with its events, every time index entry points at an event, and every topic's mark is not behind its last
// event. It returns the problems found (empty = healthy). Damage to the file is a problem too: a damaged page tree
// is reported (the deeper checks, which would need it, are skipped), and a page that cannot be read ends the check
// with the problems found so far plus one saying so. The error is for failures to run the check at all (a
// cancelled context, an unreadable file). Decoding payloads is the query package's job.
func (a *Archive) Verify(ctx context.Context) ([]Problem, error) {
	var problems []Problem
	add := func(p Problem) { problems = append(problems, p) }
	err := a.view(func(tx *bolt.Tx) error {
		if a.file != nil {
			ps := a.db.Info().PageSize
			err := walkPages(ctx, a.file, ps, uint64(tx.Cursor().Bucket().Root()), uint64(tx.Size())/uint64(ps),
				uint64(tx.ID()))
			if errors.Is(err, errDamaged) {
				add(Problem{What: err.Error() + "; the other checks need a sound page tree and were skipped"})
				a.brokenTree.Store(&treeDamage{txid: tx.ID(), reason: strings.TrimPrefix(err.Error(),
					errDamaged.Error()+": ")})
				return nil
			}
			if err != nil {
				return err
			}
		}
		for err := range tx.Check() {
			add(Problem{What: "bbolt consistency: " + plainCheckError(err)})
		}
		schemas, topics := tx.Bucket(bucketSchemas), tx.Bucket(bucketTopics)
		if schemas == nil || topics == nil {
			add(Problem{What: "file damaged: the schemas or topics bucket cannot be found"})
			return nil
		}
		return topics.ForEachBucket(func(name []byte) error {
			t := topics.Bucket(name)
			if t == nil {
				add(Problem{Topic: string(name), What: "file damaged: the topic's bucket cannot be opened"})
				return nil
			}
			if testHookVerifyTopic != nil {
				testHookVerifyTopic(string(name))
			}
			return verifyTopic(ctx, t, string(name), schemas, add)
		})
	}, nil)
	if ce, ok := errors.AsType[*CorruptError](err); ok {
		add(Problem{What: "file damaged: a page could not be read" + damageDetail(ce.Detail) +
			"; the check stopped there"})
		return problems, nil
	}
	if err != nil {
		return problems, fmt.Errorf("verify %s: %w", a.path, err)
	}
	return problems, nil
}

// testHookVerifyTopic, when set by a test, runs before each topic's checks (to simulate a page bbolt cannot read).
var testHookVerifyTopic func(topic string)

// damageDetail quotes bbolt's own words about a damaged page (its assertions), but not a Go runtime error, which
// says nothing to a user (the view logs it at debug level).
func damageDetail(detail string) string {
	if detail == "" || strings.Contains(detail, "runtime error") || strings.Contains(detail, "goroutine") {
		return ""
	}
	if len(detail) > 200 {
		detail = detail[:200] + "…"
	}
	return " (bbolt: " + detail + ")"
}

// plainCheckError is an error of bbolt's Check, with a panic it recovered put in plain words.
func plainCheckError(err error) string {
	msg := err.Error()
	if strings.Contains(msg, "runtime error") || strings.HasPrefix(msg, "panic:") {
		return "file damaged: the check could not read a page" + damageDetail(strings.TrimPrefix(msg, "panic: "))
	}
	return msg
}

func verifyTopic(ctx context.Context, t *bolt.Bucket, topic string, schemas *bolt.Bucket, add func(Problem)) error {
	st, err := loadState(t.Bucket(bucketState))
	if err != nil {
		add(Problem{Topic: topic, What: "unreadable state: " + err.Error()})
	}
	missing := map[string]bool{}
	checkSchema := func(id string, rid []byte) {
		if id == "" || missing[id] {
			return
		}
		if schemas.Get([]byte(id)) == nil {
			missing[id] = true
			add(Problem{Topic: topic, ReplayID: clone(rid), What: fmt.Sprintf("schema %s is not stored", id)})
		}
	}
	var (
		n, collisions uint64
		maxID         []byte
		ev            Event
		intern        string
	)
	if events := t.Bucket(bucketEvents); events != nil {
		c := events.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			n++
			if v == nil {
				add(Problem{Topic: topic, ReplayID: clone(k), What: "nested bucket among events"})
				continue
			}
			if err := decodeEnvelope(v, &ev, &intern); err != nil {
				add(Problem{Topic: topic, ReplayID: clone(k), What: err.Error()})
				continue
			}
			rid := k
			if ev.ReplayID != nil {
				collisions++
				rid = ev.ReplayID
				if !bytes.HasPrefix(k, rid) {
					add(Problem{Topic: topic, ReplayID: clone(k), What: "collision entry under a foreign key"})
				}
			}
			if maxID == nil || bytes.Compare(rid, maxID) > 0 {
				maxID = rid
			}
			checkSchema(ev.SchemaID, rid)
		}
	}
	if err == nil {
		if n != st.events {
			add(Problem{Topic: topic, What: fmt.Sprintf("state counts %d events, the bucket holds %d", st.events, n)})
		}
		if collisions != st.collisions {
			add(Problem{Topic: topic, What: fmt.Sprintf("state counts %d collisions, the bucket holds %d",
				st.collisions, collisions)})
		}
		switch {
		case maxID != nil && st.hwm == nil:
			add(Problem{Topic: topic, What: "events stored but no mark"})
		case maxID != nil && bytes.Compare(st.hwm, maxID) < 0:
			add(Problem{Topic: topic, ReplayID: clone(maxID),
				What: fmt.Sprintf("mark %x is behind the last event", st.hwm)})
		}
	}
	if times, events := t.Bucket(bucketTimes), t.Bucket(bucketEvents); times != nil {
		err := times.ForEach(func(k, v []byte) error {
			if len(k) != 8 || events == nil || events.Get(v) == nil {
				add(Problem{Topic: topic, ReplayID: clone(v),
					What: fmt.Sprintf("time index entry %x points at no event", k)})
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if used := t.Bucket(bucketSchemasUsed); used != nil {
		err := used.ForEach(func(k, v []byte) error {
			u, err := decodeSchemaUse(v)
			if err != nil {
				add(Problem{Topic: topic, What: fmt.Sprintf("schema use record %q: %v", k, err)})
				return nil
			}
			checkSchema(schemaIDFromUseKey(k), u.first)
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
